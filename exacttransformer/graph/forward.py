"""The whole graph of a walkthrough and its forward pass.

Layer: graph (its top).  :func:`build_graph` puts together the transformer's nodes
(:mod:`exacttransformer.graph.model`) and the decoding, geometry and training nodes that read
them (and the statistics a claim asks for, :mod:`.stats`); :func:`forward` evaluates that
graph into a :class:`~exacttransformer.graph.trace.Trace`.
"""

from __future__ import annotations

from ..exact.backends import EXACT
from ..exact.backends.base import Backend
from .config import ModelConfig
from .decoding_nodes import decoding_nodes
from .geometry_nodes import geometry_nodes
from .graph import Guard, Node, Patch
from .model import Inputs, model_nodes, run
from .params import Params
from .stats import statistic_nodes
from .trace import Trace
from .training_nodes import backward_nodes, loss_node


def build_graph(config: ModelConfig, params: Params, inputs: Inputs) -> tuple[Node, ...]:
    """Every node of the model, in evaluation order."""
    nodes = model_nodes(config, params, inputs)
    nodes += decoding_nodes(config, params, inputs)
    nodes += geometry_nodes(params, inputs)
    if inputs.target is not None:
        nodes.append(loss_node(inputs.target))
    if inputs.target is not None or inputs.labels is not None:
        nodes += backward_nodes(nodes, config, params, inputs.asked)
    return tuple(statistic_nodes(nodes, inputs.asked))


def forward(
    config: ModelConfig,
    params: Params,
    inputs: Inputs,
    backend: Backend = EXACT,
    patch: Patch | None = None,
    *,
    title: str = "",
    source: str = "",
    guard: Guard | None = None,
) -> Trace:
    """Run the graph and return the trace of every node that could be computed
    (``guard``: see :func:`exacttransformer.graph.graph.evaluate`)."""
    return run(build_graph(config, params, inputs), config, inputs, backend, patch,
               title=title, source=source, guard=guard)
