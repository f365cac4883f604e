"""Copy every file uploaded to Uploadcare into your own S3 bucket, and prove each copy landed.

All logic of both Lambda functions lives in this package (packed as the common layer by `sam build`);
the handlers in functions/ are thin entry points.
"""

__version__ = "0.1.0"
