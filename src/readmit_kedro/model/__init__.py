"""Model pieces shared by the pipelines: encoding, calibration, metrics with intervals and the
reference profile monitoring compares against. Pure functions and picklable objects, no I/O."""
