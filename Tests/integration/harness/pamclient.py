"""A PAM application for tests: the real libpam through pam_start_confdir.

No wrapper and no change to /etc/pam.d: the service file is read from a folder
of the test's own. The conversation is scripted by a callable that sees every
message (style, text) and returns the answer for prompts.
"""
import ctypes
import ctypes.util
from ctypes import CFUNCTYPE, POINTER, Structure, c_char_p, c_int, c_void_p, cast, sizeof

PAM_PROMPT_ECHO_OFF = 1
PAM_PROMPT_ECHO_ON = 2
PAM_ERROR_MSG = 3
PAM_TEXT_INFO = 4

PAM_SUCCESS = 0
PAM_PERM_DENIED = 6
PAM_AUTH_ERR = 7
PAM_AUTHINFO_UNAVAIL = 9
PAM_USER_UNKNOWN = 10
PAM_MAXTRIES = 11
PAM_NEW_AUTHTOK_REQD = 12
PAM_ACCT_EXPIRED = 13
PAM_CONV_ERR = 19
PAM_AUTHTOK_ERR = 20
PAM_IGNORE = 25

STYLE_NAMES = {1: "ECHO_OFF", 2: "ECHO_ON", 3: "ERROR", 4: "INFO"}


class _Msg(Structure):
    _fields_ = [("msg_style", c_int), ("msg", c_char_p)]


class _Resp(Structure):
    _fields_ = [("resp", c_void_p), ("resp_retcode", c_int)]


_CONV = CFUNCTYPE(c_int, c_int, POINTER(POINTER(_Msg)), POINTER(POINTER(_Resp)), c_void_p)


class _Conv(Structure):
    _fields_ = [("conv", _CONV), ("appdata_ptr", c_void_p)]


_libpam = ctypes.CDLL(ctypes.util.find_library("pam"))
_libc = ctypes.CDLL(None)
_libc.calloc.restype = c_void_p
_libc.calloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
_libc.strdup.restype = c_void_p
_libc.strdup.argtypes = [c_char_p]
_libpam.pam_start_confdir.argtypes = [c_char_p, c_char_p, POINTER(_Conv), c_char_p, POINTER(c_void_p)]
for _fn in ("pam_authenticate", "pam_acct_mgmt", "pam_chauthtok", "pam_setcred", "pam_open_session", "pam_close_session"):
    getattr(_libpam, _fn).argtypes = [c_void_p, c_int]
_libpam.pam_end.argtypes = [c_void_p, c_int]
_libpam.pam_set_item.argtypes = [c_void_p, c_int, c_void_p]
_libpam.pam_strerror.restype = c_char_p
_libpam.pam_strerror.argtypes = [c_void_p, c_int]

PAM_TTY = 3
PAM_RHOST = 4


class Transaction:
    """One PAM transaction. `answer(style, text)` returns a str for prompts, or
    None to fail the conversation (PAM_CONV_ERR)."""

    def __init__(self, confdir, service, user, answer, tty=None, rhost=None):
        self.transcript = []
        self._answer = answer
        self._handle = c_void_p()

        @_CONV
        def conv(n, msgs, presp, _appdata):
            arr = cast(_libc.calloc(n, sizeof(_Resp)), POINTER(_Resp))
            for i in range(n):
                m = msgs[i].contents
                text = m.msg.decode() if m.msg else ""
                self.transcript.append((m.msg_style, text))
                reply = self._answer(m.msg_style, text)
                if m.msg_style in (PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON):
                    if reply is None:
                        return PAM_CONV_ERR
                    arr[i].resp = _libc.strdup(reply.encode())
            presp[0] = arr
            return PAM_SUCCESS

        self._conv_fn = conv  # keep the callback alive
        self._conv = _Conv(conv, None)
        rc = _libpam.pam_start_confdir(
            service.encode(), user.encode() if user else None, ctypes.byref(self._conv),
            str(confdir).encode(), ctypes.byref(self._handle))
        if rc != PAM_SUCCESS:
            raise RuntimeError(f"pam_start_confdir failed: {rc}")
        if tty:
            self._set(PAM_TTY, tty)
        if rhost:
            self._set(PAM_RHOST, rhost)

    def _set(self, item, value):
        self._keep = getattr(self, "_keep", []) + [ctypes.create_string_buffer(value.encode())]
        _libpam.pam_set_item(self._handle, item, ctypes.cast(self._keep[-1], c_void_p))

    def run(self, step, flags=0):
        return getattr(_libpam, "pam_" + step)(self._handle, flags)

    def getenv(self, name):
        get = _libpam.pam_getenv
        get.restype = ctypes.c_char_p
        get.argtypes = [c_void_p, ctypes.c_char_p]
        v = get(self._handle, name.encode())
        return v.decode() if v is not None else None

    def strerror(self, rc):
        return _libpam.pam_strerror(self._handle, rc).decode()

    def end(self, rc=PAM_SUCCESS):
        _libpam.pam_end(self._handle, rc)

    def messages(self, style=None):
        return [t for s, t in self.transcript if style is None or s == style]


def scripted(answers):
    """An answer function that gives `answers` in order to prompts."""
    answers = list(answers)

    def answer(style, text):
        if style in (PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON):
            return answers.pop(0) if answers else None
        return None

    return answer


def authenticate(confdir, service, user, answer, steps=("authenticate",), **kw):
    """Runs `steps` in one transaction; returns (list of return codes, transcript)."""
    t = Transaction(confdir, service, user, answer, **kw)
    codes = []
    try:
        for step in steps:
            rc = t.run(step)
            codes.append(rc)
            if rc != PAM_SUCCESS:
                break
    finally:
        t.end(codes[-1] if codes else PAM_SUCCESS)
    return codes, t.transcript
