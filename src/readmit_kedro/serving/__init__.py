"""The real-time scoring service (``readmit serve``): the batch path's rules for one encounter."""
