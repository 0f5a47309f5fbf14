"""The kubernetes backend: real clusters through the official client.

``localcluster/`` runs a real control plane (kube-apiserver, controller-manager, scheduler and
etcd) on this machine, for the backend's own tests and for anyone who wants a cluster to point
a test at.
"""
