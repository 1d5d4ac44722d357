"""The directory exchange: HSDS 3.0 in and out, EDXL-HAVE 2.0 availability (issue 14)."""
