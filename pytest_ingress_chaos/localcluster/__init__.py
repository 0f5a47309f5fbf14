"""A local Kubernetes cluster anyone can point a test at, on loopback.

A real control plane (``controlplane.py``: etcd, kube-apiserver, controller-manager, scheduler)
with stand-ins for what cannot run here: a kubelet that runs the sample app as a local process
per pod, and an AWS Load Balancer Controller that drives the simulator's ALB and kube-proxy
from the API. It is a tool apart: neither backend imports it, and it may use both the
simulator's data plane and the Kubernetes client.
"""
