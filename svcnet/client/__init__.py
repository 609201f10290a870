"""A small async Kubernetes client: kubeconfig loading, requests, informers, a work queue."""

from svcnet.client.api import Client, path_for
from svcnet.client.config import ClientConfig, ConfigError, load_kubeconfig
from svcnet.client.informer import Handlers, Informer, object_key
from svcnet.client.workqueue import WorkQueue

__all__ = ["Client", "ClientConfig", "ConfigError", "Handlers", "Informer", "WorkQueue", "load_kubeconfig",
           "object_key", "path_for"]
