"""celery_tasks.py -- the Celery 5 side of `make bench`: the 2-step calc chain Phoenix runs.

Job i is chain(calc("i*(3+4)"), calc_next("{{a}} + 1")): the second task gets the first one's
result, exactly like Phoenix's step b reading {{steps.a.output.value}}, so both systems do the
same work per job (two tasks, one hand-over of a value through the broker and result store).
The broker and the result backend are one Redis (PHX_CELERY_REDIS), as the issue asks.

The calculator is a small AST walker over + - * / % ^ and parentheses, not eval(): the same
grammar Phoenix's tool.calc accepts, and just as safe with untrusted input.
"""
import ast
import operator
import os

from celery import Celery

URL = os.environ.get("PHX_CELERY_REDIS", "redis://127.0.0.1:6379/0")
app = Celery("phxbench", broker=URL, backend=URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    # Events cost a publish per task and nothing here reads them (Phoenix's phx.events are
    # kept on its side: they are part of its contract).
    worker_send_task_events=False,
    task_send_sent_event=False,
    result_expires=3600,
)

_OPS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.BitXor: operator.pow,  # "^" is a power in tool.calc
}


def _eval(node):
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval(node.operand)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_eval(node.left), _eval(node.right))
    raise ValueError("unsupported expression")


def evaluate(expr):
    return _eval(ast.parse(expr, mode="eval").body)


@app.task(name="calc")
def calc(expr):
    return {"value": evaluate(expr)}


@app.task(name="calc_next")
def calc_next(prev, template):
    return {"value": evaluate(template.replace("{{a}}", repr(prev["value"])))}
