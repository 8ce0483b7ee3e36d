"""LAN Call: a signalling server and browser client for face-to-face WebRTC calls
between devices on one network. Start reading at `app.py`."""

__version__ = "1.0.0"
