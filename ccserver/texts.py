"""Messages people read in another language: an English text that remembers its template and values.

Services raise errors in English (logs, API scripts and tests read them so). A message made with
``T("agent {extension} is not signed in", extension=ext)`` is that English string — a ``str`` in every way — and
also keeps the template and the values, so the HTTP layer can answer a zh-CN page with the catalogue's translation
(``agents_ui/locale``, extracted by ``make i18n`` with the keyword ``T``) filled with the same values. A plain
``str`` message stays English everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping


class Text(str):
    """An English message (the ``str`` itself) with its ``template`` and ``params``: see :func:`T`."""

    template: str
    params: dict[str, object]

    def __new__(cls, template: str, params: dict[str, object]) -> Text:
        self = super().__new__(cls, template.format(**params) if params else template)
        self.template = template
        self.params = params
        return self

    def translated(self, gettext: Callable[[str], str], labels: Mapping[str, str] | None = None) -> str:
        """The message in the catalogue's language; the English one if the translation does not fit the values.
        A :class:`Field` value reads as its form's label when ``labels`` (field -> label shown) names it."""
        # A value that is itself a Text (a list of reasons) is read in the same language.
        params = {k: v.translated(gettext, labels) if isinstance(v, Text)
                  else (labels or {}).get(v, v) if isinstance(v, Field) else v for k, v in self.params.items()}
        try:
            return gettext(self.template).format(**params) if params else gettext(self.template)
        except (KeyError, IndexError, ValueError):
            return str.__str__(self)

    def __reduce__(self) -> tuple[object, ...]:  # copy / pickle keep the template
        return (Text, (self.template, dict(self.params)))


class Field(str):
    """A form field's name as a value of a :class:`Text` (``T("{field} must be a date", field=Field("from"))``):
    English (the API) reads the name; a page that passes its labels to :func:`translated` reads the label it shows
    in its language ("至" for ``to``), never the raw name inside a Chinese sentence."""

    __slots__ = ()


class RoleName(Text):
    """A role as a value of a :class:`Text`: English (the API) reads its code, ``'agent'``; a page reads the role's
    name in its language, never the code. ``NAMES`` are the names every page shows (agents_ui/templates/_roles.html
    reads them from here)."""

    NAMES: dict[str, str] = {}  # filled below: T is defined after this class

    def __new__(cls, role: str) -> RoleName:
        self = str.__new__(cls, repr(role))
        self.template, self.params, self.role = "{role}", {"role": repr(role)}, role
        return self

    role: str

    def translated(self, gettext: Callable[[str], str], labels: Mapping[str, str] | None = None) -> str:
        name = self.NAMES.get(self.role)
        shown = gettext(name) if name is not None else name
        # An English reader keeps the code they would type (the API's, the CLI's); others read the name.
        return shown if shown is not None and shown != name else str.__str__(self)

    def __reduce__(self) -> tuple[object, ...]:
        return (RoleName, (self.role,))


def T(template: str, /, **params: object) -> Text:  # noqa: N802 - the extraction keyword, short as gettext's _
    """``template`` in English with ``{name}`` fields filled from ``params`` (values are never translated)."""
    return Text(template, params)


RoleName.NAMES.update(agent=T("Agent"), supervisor=T("Supervisor"), department=T("Department staff"),
                      campaign_manager=T("Campaign manager"), admin=T("Administrator"))


def message_of(exc: BaseException) -> str:
    """An exception's message, a :class:`Text` kept as such (``str(exc)`` would make it a plain ``str``): for the
    places that turn one error into another."""
    first = exc.args[0] if len(exc.args) == 1 else None
    return first if isinstance(first, str) else str(exc)


def translated(message: str, gettext: Callable[[str], str] | None, labels: Mapping[str, str] | None = None) -> str:
    """``message`` for a reader of ``gettext``'s language (None: English, as written), its :class:`Field` values
    read as ``labels`` names them."""
    if gettext is None or not isinstance(message, Text):
        return message
    return message.translated(gettext, labels)
