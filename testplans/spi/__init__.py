"""SPI plans: the metering chip register protocol, the MCU polling it, and consistency with the bench."""
