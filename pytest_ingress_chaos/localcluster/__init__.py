"""A local Kubernetes cluster anyone can point a test at, on this machine.

A real control plane (``controlplane.py``: etcd, kube-apiserver, controller-manager, scheduler)
and real nodes (``nodes.py``: containerd, kubelet and kube-proxy per node in network namespaces
of the run, on 198.18.0.0/15), with a stand-in only for what cannot exist here: an AWS Load
Balancer Controller that drives the simulator's ALB from the API. A kubelet stand-in that runs
pods as local processes (``kubelet.py``) serves where real nodes cannot run, when asked for. It
is a tool apart: neither backend imports it, and it may use both the simulator's data plane and
the Kubernetes client.
"""
