"""Infrastructure as code: the IAM role and the Redshift cluster."""
