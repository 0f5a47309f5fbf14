"""The ALB's own view of its targets, from the AWS API (docs/aws-evidence.md).

With the aws-alb profile and AWS credentials, each test's target group is found from the AWS
Load Balancer Controller's TargetGroupBinding (``discovery.py``), its attributes are read once,
and DescribeTargetHealth is polled while the test runs (``poller.py``); every change is a
``target.*`` event of source ``aws``. boto3 is imported only when the evidence is on
(``access.py``; the ``pytest-ingress-chaos[aws]`` extra). No fault of AWS's fails a test: each is
one line in the report (``faults.py``).
"""
