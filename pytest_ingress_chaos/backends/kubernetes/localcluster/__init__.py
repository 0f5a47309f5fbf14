"""A real Kubernetes control plane on loopback, for tests of the Kubernetes backend.

No cluster can be had on the machines this project is developed and tested on, so the backend's
tests run a real kube-apiserver, controller-manager and scheduler (built once from source by
``tools/build-kube-control-plane.sh``) against etcd; see :mod:`.controlplane`.
"""
