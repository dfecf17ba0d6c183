"""What comes in and goes out as files: pictures, weights files, the shipped samples and assets, sizes for people."""
