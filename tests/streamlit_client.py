"""A Streamlit session without a browser: a client that speaks Streamlit's websocket protocol.

A browser tab costs a load test hundreds of MB and a good part of a core; this client is one websocket and
the protobufs Streamlit installs (``streamlit.proto``), so 30 to 60 "students" fit on a 2-core machine beside
the server they load. It plays the browser's side of what the server's websocket endpoint
(``streamlit/web/server/starlette/starlette_websocket.py``) and ``runtime/app_session.py`` expect:

* it opens ``ws://HOST/_stcore/stream`` (subprotocol ``streamlit``; through nginx with a ``bv_replica``
  cookie when given, so that the session stays on one replica); no script runs until the client asks;
* a script run is one ``BackMsg`` with ``rerun_script``: a ``ClientState`` holding the page's query string
  (without ``?``), the page (its URL path as ``page_name``, like ``join``, until the server has named the
  page's ``page_script_hash`` in a ``navigation`` message), ``context_info`` (the address, for
  ``st.context.url``), the widget states, and, for a fragment's timed rerun, the fragment's id with
  ``is_auto_rerun``;
* ``ForwardMsg``\\ s come back: ``new_session`` (a run starts; ``metadata.run.fragment_ids`` tells a
  fragment's run), ``navigation`` (the page that ran, by hash), ``delta`` (an element or a block at
  ``metadata.delta_path``), ``page_info_changed`` (the app wrote ``st.query_params``: the client adopts the
  query string, as the browser's address bar does), ``auto_rerun`` (a fragment with ``run_every``: the
  browser starts a timer), ``script_finished`` (the run is over: finished, stopped early for a rerun, or a
  fragment's run finished).

It fetches nothing over HTTP: no ``/_stcore/health`` or ``host-config`` before connecting, no pictures
(``/media/``), no static files, which a browser does (behind ``serve``'s nginx those mostly come from
nginx's cache).

Widgets are found by their ``key``: Streamlit's element id is ``$$ID-<hash>-<key>``. A value the caller sets
(:meth:`StreamlitClient.set_value`; a radio's or a selectbox's with :meth:`StreamlitClient.choose`, which
sends the option's text as drawn) is sent with every later run, as a browser keeps a widget's value; a
trigger (a button press) is sent once. Widgets the caller never touched are left out, which leaves their
values to the session's state on the server, as a browser that shows them untouched would.

Typical use (asyncio)::

    async with StreamlitClient("http://127.0.0.1:8501", "join", {"code": "K7P2QX"}) as student:
        await student.run()                                  # the join page, drawn
        await student.run(triggers=["classroom.join"])       # press Join: the app writes ?seat=...
        seat = student.query["seat"]
        student.choose("_w_classroom.answer.K7P2QX.0", 2)
        await student.run()                                  # answer c)
        print(student.texts())
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.Element_pb2 import Element
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.asyncio.client import ClientConnection, connect

#: ``ForwardMsg.script_finished`` values.
FINISHED = ForwardMsg.ScriptFinishedStatus.Value("FINISHED_SUCCESSFULLY")
COMPILE_ERROR = ForwardMsg.ScriptFinishedStatus.Value("FINISHED_WITH_COMPILE_ERROR")
EARLY_FOR_RERUN = ForwardMsg.ScriptFinishedStatus.Value("FINISHED_EARLY_FOR_RERUN")
FRAGMENT_FINISHED = ForwardMsg.ScriptFinishedStatus.Value("FINISHED_FRAGMENT_RUN_SUCCESSFULLY")

Path_ = tuple[int, ...]
_IDS = itertools.count(1)


class ScriptError(RuntimeError):
    """A run drew an exception box (``st.exception``, or an uncaught error in the page)."""


@dataclass
class Run:
    """One script run as the client saw it.

    Attributes:
        status: how the last run of the request ended (:data:`FINISHED`, :data:`FRAGMENT_FINISHED`, ...).
        sent: ``time.monotonic()`` when the request left the client.
        finished: ``time.monotonic()`` when its ``script_finished`` arrived.
        elements: the elements the request's runs drew, by delta path (``(0, 3, 1)``: main area, 4th
            block, 2nd element); a fragment run draws only its fragment's elements.
        reruns: how many runs the request took (``st.rerun()`` inside a run starts another one).
    """

    status: int
    sent: float
    finished: float
    elements: dict[Path_, Element]
    reruns: int = 1

    @property
    def seconds(self) -> float:
        return self.finished - self.sent

    def texts(self) -> list[str]:
        """The texts of :attr:`elements`, in page order (see :func:`element_text`)."""
        return [t for _, e in sorted(self.elements.items()) if (t := element_text(e))]


@dataclass
class _Pending:
    future: asyncio.Future[Run]
    sent: float
    elements: dict[Path_, Element] = field(default_factory=dict)
    runs: int = 0


def element_text(element: Element) -> str:
    """What an element says, as plain as the proto has it: a markdown's body, a text, a heading, an alert's
    body, a progress bar's label, an HTML block's source, a widget's label, an exception's message; ``""``
    for other elements (pictures, charts, spaces)."""
    kind = element.WhichOneof("type")
    if kind is None:
        return ""
    inner = getattr(element, kind)
    if kind == "exception":
        return f"{inner.type}: {inner.message}"
    for name in ("body", "text", "label"):
        value = getattr(inner, name, None)
        if isinstance(value, str) and value:
            return value
    return ""


def widget_id_of(element: Element) -> str | None:
    """The widget id (``$$ID-<hash>-<key>``) of a widget element, None for other elements."""
    kind = element.WhichOneof("type")
    if kind is None:
        return None
    value = getattr(getattr(element, kind), "id", None)
    return value if isinstance(value, str) and value else None


class StreamlitClient:
    """One Streamlit session over one websocket, driven from asyncio.

    Args:
        base_url: the app's address, ``http://host:port`` (nginx's, or one replica's).
        page: the page's URL path (``"join"``, ``"classroom"``; ``""`` for the default page).
        query: the page's query, as the address bar holds it (``{"code": "K7P2QX"}``).
        cookies: cookies for the websocket's handshake (``{"bv_replica": "student7"}`` pins the session to
            one replica behind ``serve``'s nginx).
        timeout: seconds a run may take before :meth:`run` gives up.

    Attributes:
        query: the current query string's parameters; ``page_info_changed`` replaces them, as the app's
            ``st.query_params`` changes the browser's address bar.
        elements: the page as drawn so far: element by delta path. A full run's end drops the elements it
            did not draw again (as the browser drops stale elements); a fragment run replaces its own.
        received: ForwardMsgs received, counted by type.
    """

    def __init__(
        self,
        base_url: str,
        page: str = "",
        query: Mapping[str, str] | None = None,
        *,
        cookies: Mapping[str, str] | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.page = page.strip("/")
        self.query: dict[str, str] = dict(query or {})
        self.cookies = dict(cookies or {})
        self.timeout = timeout
        self.name = f"client-{next(_IDS)}"
        self.page_script_hash = ""
        self.elements: dict[Path_, Element] = {}
        self.received: dict[str, int] = {}
        #: Fragments the server asked to rerun by timer: fragment id -> seconds.
        self.auto_reruns: dict[str, float] = {}
        self._values: dict[str, Any] = {}
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._pending: _Pending | None = None
        self._drawn_this_run: set[Path_] = set()
        self._fragment_run = False
        self._listeners: list[Callable[[ForwardMsg], None]] = []
        self._closed_error: BaseException | None = None

    # ------------------------------------------------------------------------------------------ connection

    async def connect(self) -> StreamlitClient:
        """Opens the websocket (no script runs yet: the browser asks for the first run, see :meth:`run`)."""
        parts = urllib.parse.urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        uri = f"{scheme}://{parts.netloc}{parts.path}/_stcore/stream"
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self._ws = await connect(
            uri,
            subprotocols=["streamlit"],  # type: ignore[list-item]
            additional_headers=headers,
            proxy=None,
            max_size=None,  # a page's first run may carry pictures inline
            open_timeout=self.timeout,
            ping_interval=None,  # the server pings; a busy loop of clients need not
        )
        self._reader = asyncio.create_task(self._read(), name=f"{self.name}-reader")
        return self

    async def close(self) -> None:
        """Closes the websocket (the server keeps the session for ``disconnectedSessionTTL``)."""
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader

    async def __aenter__(self) -> StreamlitClient:
        return await self.connect()

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # ------------------------------------------------------------------------------------------ widgets

    def widget_id(self, key: str) -> str:
        """The id of the widget drawn with ``key=key`` on the current page.

        Raises:
            KeyError: no widget with that key is on the page.
        """
        suffix = f"-{key}"
        for element in self.elements.values():
            wid = widget_id_of(element)
            if wid is not None and wid.endswith(suffix) and wid.split("-", 2)[-1] == key:
                return wid
        raise KeyError(f"no widget with key {key!r} on the page (keys: {sorted(self.widget_keys())})")

    def widget_keys(self) -> set[str]:
        """The keys of the widgets on the current page (widgets drawn without a key are left out)."""
        keys = set()
        for element in self.elements.values():
            wid = widget_id_of(element)
            if wid is not None and (key := wid.split("-", 2)[-1]) != "None":
                keys.add(key)
        return keys

    def set_value(self, key: str, value: bool | int | float | str) -> None:
        """Sets a widget's value, sent with this and every later run: a checkbox's is a bool, a text
        input's a str, a number input's an int or a float. A radio or a selectbox: :meth:`choose`."""
        self._values[self.widget_id(key)] = value

    def options(self, key: str) -> list[str]:
        """The options of a radio or a selectbox, as drawn (after its ``format_func``)."""
        wid = self.widget_id(key)
        for element in self.elements.values():
            if widget_id_of(element) == wid:
                return list(getattr(element, element.WhichOneof("type")).options)
        raise KeyError(key)  # unreachable: widget_id found it

    def choose(self, key: str, index: int) -> str:
        """Picks option ``index`` of a radio or a selectbox, sent with this and every later run; returns the
        option's text. Since Streamlit 1.50 or so these widgets send the option's text as drawn
        (``string_value``), not its index, so that options can change between runs."""
        text = self.options(key)[index]
        self._values[self.widget_id(key)] = text
        return text

    # ------------------------------------------------------------------------------------------ runs

    async def run(
        self,
        *,
        triggers: Iterable[str] = (),
        fragment_id: str = "",
        auto: bool = False,
        timeout: float | None = None,
        check: bool = True,
    ) -> Run:
        """Asks for a script run and waits until it is over, reruns included (an ``st.rerun()`` inside ends
        the run "early for rerun" and starts another: this waits for the last).

        Args:
            triggers: keys of buttons pressed for this run (a trigger is sent once).
            fragment_id: rerun only this fragment (as a ``run_every`` timer does).
            auto: the run is a timer's (``is_auto_rerun``).
            check: raise :class:`ScriptError` if the run drew an exception.

        Raises:
            TimeoutError: the run did not finish within ``timeout`` (default: the client's).
            ConnectionError: the websocket closed.
        """
        if self._pending is not None:
            raise RuntimeError(f"{self.name}: a run is already in flight")
        msg = BackMsg()
        state = msg.rerun_script
        state.query_string = urllib.parse.urlencode(self.query)
        state.page_script_hash = self.page_script_hash
        if not self.page_script_hash:
            state.page_name = self.page
        state.fragment_id = fragment_id
        state.is_auto_rerun = auto
        state.context_info.url = self.url
        state.context_info.timezone = "UTC"
        state.context_info.timezone_offset = 0
        state.context_info.locale = "en-US"
        values = dict(self._values)
        for key in triggers:
            values[self.widget_id(key)] = _Trigger()
        for wid, value in values.items():
            _set_widget(state.widget_states.widgets.add(), wid, value)
        loop = asyncio.get_running_loop()
        pending = _Pending(loop.create_future(), time.monotonic())
        self._pending = pending
        try:
            await self._send(msg)
            run = await asyncio.wait_for(pending.future, timeout or self.timeout)
        finally:
            self._pending = None
        if check:
            for element in run.elements.values():
                if element.WhichOneof("type") == "exception":
                    raise ScriptError(f"{self.name} on /{self.page}: {element_text(element)}")
        return run

    @property
    def url(self) -> str:
        """The page's address as a browser would show it (``st.context.url``)."""
        query = urllib.parse.urlencode(self.query)
        return f"{self.base_url}/{self.page}" + (f"?{query}" if query else "")

    def texts(self) -> list[str]:
        """The texts of the page as drawn now, in page order (see :func:`element_text`)."""
        return [t for _, e in sorted(self.elements.items()) if (t := element_text(e))]

    def listen(self, callback: Callable[[ForwardMsg], None]) -> None:
        """Calls ``callback(msg)`` for every ForwardMsg, after the client has taken it in (in the reader)."""
        self._listeners.append(callback)

    async def poll(self, stop: asyncio.Event, on_run: Callable[[Run], None] | None = None) -> int:
        """Plays the browser's ``run_every`` timers until ``stop`` is set: each fragment the server asked
        for is rerun every interval, measured from the end of its last run (a browser's timer does not
        wait for the run; on a busy server this client's timer drifts later instead of piling up
        requests). Returns the number of runs.

        Raises:
            RuntimeError: the page has no timed fragment.
        """
        if not self.auto_reruns:
            raise RuntimeError(f"{self.name}: the page asked for no timed rerun")
        runs = 0
        due = {fid: time.monotonic() + interval for fid, interval in self.auto_reruns.items()}
        while not stop.is_set():
            fid, when = min(due.items(), key=lambda item: item[1])
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, when - time.monotonic()))
            if stop.is_set():
                break
            run = await self.run(fragment_id=fid, auto=True)
            runs += 1
            if on_run is not None:
                on_run(run)
            if run.status == FINISHED:  # the fragment called st.rerun(): a full run set new timers
                due = {f: time.monotonic() + i for f, i in self.auto_reruns.items()}
            else:
                due[fid] = time.monotonic() + self.auto_reruns.get(fid, due[fid])
        return runs

    # ------------------------------------------------------------------------------------------ inside

    async def _send(self, msg: BackMsg) -> None:
        if self._ws is None:
            raise RuntimeError(f"{self.name}: not connected")
        if self._closed_error is not None:
            raise ConnectionError(f"{self.name}: the websocket closed") from self._closed_error
        await self._ws.send(msg.SerializeToString())

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for data in self._ws:
                if isinstance(data, str):
                    continue
                msg = ForwardMsg()
                msg.ParseFromString(data)
                self._take(msg)
                for callback in self._listeners:
                    callback(msg)
        except Exception as error:  # noqa: BLE001 - handed to whoever waits
            self._closed_error = error
        else:
            self._closed_error = ConnectionError("closed by the server")
        if self._pending is not None and not self._pending.future.done():
            self._pending.future.set_exception(
                ConnectionError(f"{self.name}: the websocket closed during a run ({self._closed_error!r})")
            )

    def _take(self, msg: ForwardMsg) -> None:
        kind = msg.WhichOneof("type") or "?"
        self.received[kind] = self.received.get(kind, 0) + 1
        if kind == "new_session":
            self._fragment_run = bool(msg.metadata.run.fragment_ids)
            self._drawn_this_run = set()
            if not self._fragment_run:
                self.auto_reruns = {}  # a full run registers its timers again
        elif kind == "delta":
            path = tuple(msg.metadata.delta_path)
            delta = msg.delta
            if delta.WhichOneof("type") == "new_element":
                element = Element()
                element.CopyFrom(delta.new_element)
                self.elements[path] = element
                if self._pending is not None:
                    self._pending.elements[path] = element
            else:  # a block, or a transient: the path is taken, its old element gone
                self.elements.pop(path, None)
            self._drawn_this_run.add(path)
        elif kind == "navigation":  # st.navigation says which page ran: later runs ask for it by hash
            self.page_script_hash = msg.navigation.page_script_hash or self.page_script_hash
        elif kind == "page_info_changed":
            self.query = dict(
                urllib.parse.parse_qsl(msg.page_info_changed.query_string, keep_blank_values=True)
            )
        elif kind == "auto_rerun":
            self.auto_reruns[msg.auto_rerun.fragment_id] = msg.auto_rerun.interval
        elif kind == "stop_auto_rerun":
            self.auto_reruns.clear()
        elif kind == "script_finished":
            status = msg.script_finished
            if status == FINISHED:
                # A full run draws the whole page again: a browser drops what it did not draw.
                self.elements = {p: e for p, e in self.elements.items() if p in self._drawn_this_run}
                self._values = {w: v for w, v in self._values.items() if self._on_page(w)}
            pending = self._pending
            if pending is None or pending.future.done():
                return
            pending.runs += 1
            if status != EARLY_FOR_RERUN:
                pending.future.set_result(
                    Run(status, pending.sent, time.monotonic(), dict(pending.elements), pending.runs)
                )

    def _on_page(self, wid: str) -> bool:
        return any(widget_id_of(e) == wid for e in self.elements.values())


class _Trigger:
    """A button press: sent once as ``trigger_value = True``."""


def _set_widget(state: Any, wid: str, value: object) -> None:
    state.id = wid
    if isinstance(value, _Trigger):
        state.trigger_value = True
    elif isinstance(value, bool):
        state.bool_value = value
    elif isinstance(value, int):
        state.int_value = value
    elif isinstance(value, float):
        state.double_value = value
    elif isinstance(value, str):
        state.string_value = value
    else:
        raise TypeError(f"cannot send {value!r} as a widget value")
