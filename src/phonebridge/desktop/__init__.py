"""OS integration behind small interfaces, with fakes for tests and headless runs."""
