"""Keep credentials out of what modeltrack writes: command lines, URLs, params and tags.

Standard library only, and nothing from the rest of modeltrack, so that any module can use
it. Three entry points:

* :func:`mask_argv`: a command line with the values of secret-looking options replaced by
  ``***`` (``--db-pass X``, ``--token=X``, ``-p X``, ``-pX``, ``password=X``) and every
  argument passed through :func:`scrub_text`;
* :func:`scrub_text`: one string with URL credentials (``scheme://user:***@host``) and
  secret-looking ``key=value`` pairs (``?X-Amz-Signature=***``, ``&token=***``,
  ``password=*** host=db``) masked;
* :func:`scrub_value`: :func:`scrub_text` applied to every string inside nested dicts,
  lists and tuples (a new object; keys are kept as they are).

Masking errs on the side of hiding: a value that is masked by mistake is lost from the
record, a value that is not masked by mistake is leaked. :func:`is_secret_name` decides
which names count as secret.
"""

from __future__ import annotations

import re
from typing import Any

#: what :func:`mask_argv` and :func:`scrub_text` put in place of a secret
MASK = "***"

#: fragments that make a name (option, variable, query parameter, key) look like a credential
SECRET_NAME = re.compile(
    r"pass|pwd|secret|token|key|auth|bearer|credential|cookie|session|private|signature"
    r"|(?<![a-z])sig(?![a-z])|(?<![a-z])sig(?:ned|nature)|^aws[_-]",
)
#: common words that contain such a fragment and name no secret (removed before the search):
#: ``tokenizer``, ``max_tokens``, ``sigma``, ``passes``, ``passage``, ``key_dim``, ``author``…
_BENIGN = re.compile(
    r"tokeni[sz](?:ers?|ation|ed|e)?|(?<![a-z])tokens(?![a-z])|sigm(?:a|oid)|design|passes|passages?|passthrough"
    r"|bypass|compass|keyframes?|key[_-]?(?:value|dim|frames?)|monkey|author(?!i[sz])",
)

# scheme://userinfo@  (userinfo: user, or user:password; a password may contain '@')
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^/\s?#@:]*)(?P<pw>:[^/\s?#]*)?@")
# NAME=VALUE at the start, after whitespace or after a query/fragment separator
_PAIR = re.compile(r"(?P<lead>^|[\s?&;#])(?P<name>[A-Za-z0-9_.\-]+)=(?P<value>[^&#\s;]*)")
# "Authorization: Bearer x", "Cookie: a=b" given as one argument (curl -H, wget --header)
_HEADER = re.compile(r"^(?P<name>\s*[A-Za-z0-9_\-]+\s*:)(?P<value>.*)$", re.DOTALL)
# an option name: --db-pass, -p, --token (not a negative number such as -5 or -1e3)
_OPTION = re.compile(r"^(?P<dashes>--?)(?P<name>[A-Za-z][A-Za-z0-9_.\-]*)(?P<eq>=(?P<value>.*))?$", re.DOTALL)


def is_secret_name(name: str) -> bool:
    """Whether an option, environment variable, query parameter or key name looks like it
    holds a credential (``DB_PASSWORD``, ``--api-key``, ``X-Amz-Signature``, ``AWS_*``…).

    Example:
        >>> is_secret_name("--db-pass"), is_secret_name("HF_TOKEN"), is_secret_name("tokenizer")
        (True, True, False)
    """
    low = name.lower().lstrip("-")
    return bool(SECRET_NAME.search(_BENIGN.sub("_", low)))


def _userinfo(m: re.Match[str]) -> str:
    if m.group("pw") is None:
        # scheme://TOKEN@host: a lone user part is often the credential itself (GitHub tokens)
        return f"{m.group('scheme')}{MASK}@"
    return f"{m.group('scheme')}{m.group('user')}:{MASK}@"


def _pair(m: re.Match[str]) -> str:
    if not m.group("value") or not is_secret_name(m.group("name")):
        return m.group(0)
    return f"{m.group('lead')}{m.group('name')}={MASK}"


def scrub_text(s: str) -> str:
    """``s`` with URL credentials and secret-looking ``name=value`` pairs masked.

    ``https://bob:hunter2@db/x`` becomes ``https://bob:***@db/x`` (a lone user part, as in
    ``https://TOKEN@host``, becomes ``***``); ``?X-Amz-Signature=abc&x=1`` becomes
    ``?X-Amz-Signature=***&x=1``, and so do ``sig=``, ``token=``, ``access_token=``, ``key=``
    and every other pair whose name :func:`is_secret_name` flags (in a URL's query or
    fragment, or space-separated as in ``host=db password=x``). Strings with neither
    ``://`` nor ``=`` are returned as they are, without running a regular expression.

    Example:
        >>> scrub_text("postgresql://bob:hunter2@db.example/x?sslmode=require&token=abc")
        'postgresql://bob:***@db.example/x?sslmode=require&token=***'
    """
    if "://" in s:
        s = _URL_USERINFO.sub(_userinfo, s)
    if "=" in s:
        s = _PAIR.sub(_pair, s)
    return s


def scrub_value(obj: Any) -> Any:
    """A copy of ``obj`` with :func:`scrub_text` applied to every string inside it (dict
    values, list and tuple items, recursively). Dict keys and non-string leaves are kept
    as they are. Cheap for ordinary params: a string without ``://`` or ``=`` costs two
    substring tests.

    Example:
        >>> scrub_value({"db": {"url": "mysql://u:pw@h/db"}, "lr": 0.1, "layers": ["a=1"]})
        {'db': {'url': 'mysql://u:***@h/db'}, 'lr': 0.1, 'layers': ['a=1']}
    """
    if isinstance(obj, str):
        return scrub_text(obj) if ("://" in obj or "=" in obj) else obj
    if isinstance(obj, dict):
        return {k: scrub_value(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [scrub_value(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(scrub_value(v) for v in obj)
    return obj


def mask_argv(argv: list[str]) -> list[str]:
    """A copy of the command line ``argv`` that is safe to record.

    * the value of an option whose name :func:`is_secret_name` flags is replaced by ``***``,
      in both forms: ``--db-pass X`` → ``--db-pass ***`` and ``--token=X`` → ``--token=***``
      (also with one dash, ``-password X``); a following argument that starts with ``--`` is
      taken for the next option, not a value;
    * ``-p`` is taken for a password option (mysql, sshpass…): ``-p X``, ``-p=X`` and ``-pX``
      are masked (so is a one-dash option such as ``-port``: ``-p***``);
    * ``NAME=VALUE`` arguments (Hydra overrides, ``env`` assignments) and header arguments
      (``Authorization: Bearer X``) with a secret-looking name are masked;
    * everything else goes through :func:`scrub_text` (URL credentials, signed URLs).

    Example:
        >>> mask_argv(["train.py", "--db-pass", "hunter2", "--url=https://bob:pw@db/x", "-p", "s3cret"])
        ['train.py', '--db-pass', '***', '--url=https://bob:***@db/x', '-p', '***']
    """
    out: list[str] = []
    hide_next = False
    for arg in argv:
        arg = str(arg)
        if hide_next:
            hide_next = False
            if arg != "--" and not arg.startswith("--"):
                out.append(MASK)
                continue
        opt = _OPTION.match(arg)
        if opt is not None:
            name, dashes = opt.group("name"), opt.group("dashes")
            if dashes == "-" and name.startswith("p") and name != "p" and opt.group("eq") is None:
                # -pVALUE; or -password VALUE (one-dash long option): hide the next too
                out.append(f"-p{MASK}")
                hide_next = is_secret_name(name)
                continue
            if is_secret_name(name) or (dashes == "-" and name == "p"):
                if opt.group("eq") is None:
                    out.append(arg)
                    hide_next = True
                else:
                    out.append(f"{dashes}{name}={MASK}")
                continue
            out.append(scrub_text(arg))
            continue
        header = _HEADER.match(arg) if ":" in arg and "://" not in arg else None
        if header is not None and is_secret_name(header.group("name").strip().rstrip(":")):
            out.append(f"{header.group('name')} {MASK}")
            continue
        out.append(scrub_text(arg))
    return out


def strip_credentials(uri: str) -> str:
    """``uri`` without a ``user:password@`` part (provenance is read by others)."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://)[^/@]*@", r"\1", uri)
