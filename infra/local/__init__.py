"""Native local platform: real server processes on free loopback ports (tests and `platform dev`)."""
