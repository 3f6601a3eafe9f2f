"""A plugin that wraps admit_request, whose answers ccproxy checks one by one: refused at load."""

from ccproxy_core import Admission, hookimpl


@hookimpl(wrapper=True)
def admit_request():
    answers = yield
    return [*answers, Admission(refuse_status=700)]
