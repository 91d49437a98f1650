"""Test certificates from the journal alone (composition layer): one page set per meter with identity, bench and
instruments (IDN, calibration), conditions, every test with its clause and limits, values, test uncertainty,
verdict, the error curves, and the run's integrity; as self-contained HTML or PDF. One job per module:

- lines: the certificate's lines and error curves from records; checks: the meter's verdict as a table of checks;
- data: everything a certificate shows (CertificateData); layout: what each page set says, in order, as blocks;
- html_page, pdf: the two renderings of those blocks.

Knows nothing of pytest. The names below stay importable from here.
"""

from rig.certificate.checks import CHECKS, INCOMPLETE
from rig.certificate.data import CertificateData, MeterSheet, certificate_data
from rig.certificate.html_page import render_html
from rig.certificate.layout import UNCERTAINTY_STATEMENT
from rig.certificate.lines import TestLine
from rig.certificate.pdf import render_pdf

__all__ = ["CHECKS", "INCOMPLETE", "UNCERTAINTY_STATEMENT", "CertificateData", "MeterSheet", "TestLine",
           "certificate_data", "render_html", "render_pdf"]
