"""readmit-kedro: 30-day readmission prediction for diabetic inpatients."""

__version__ = "0.1.0"
