"""Video inputs: each source yields Frame objects with a camera id, index and timestamp."""
