"""fedlogind's journal MESSAGE_IDs by their names in MessageID.swift, and a
check that a log line carries one."""
import re
from pathlib import Path

MESSAGE_IDS = Path(__file__).resolve().parents[3] / "Sources/FedloginCore/Policy/MessageID.swift"


def message_id(name):
    m = re.search(rf'static let {name} = "([0-9a-f]{{32}})"', MESSAGE_IDS.read_text())
    assert m, name
    return m.group(1)


def logged(log, text, mid):
    """The log lines with `text`; one of them carries MESSAGE_ID `mid` (a name in MessageID.swift)."""
    lines = [line for line in log.splitlines() if text in line]
    assert lines, f"no log line with {text!r}:\n{log}"
    assert any(f"message_id={message_id(mid)}" in line for line in lines), (text, lines)
    return lines
