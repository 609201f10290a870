"""svcnet's own annotation names, shared by the components that write them and those that read them."""

KUBELET_ADDRESS = "svcnet.io/kubelet-address"  # Node: where the agent's kubelet API listens, if not the InternalIP
