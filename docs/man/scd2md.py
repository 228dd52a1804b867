#!/usr/bin/env python3
"""Renders an scdoc page as Markdown: docs/man/build.sh --markdown uses it to
make docs/configuration.md from fedlogin.conf.5.scd, so the configuration
keys are written once.

Handles the subset the pages use: the title line, # and ## headings,
paragraphs, *bold*, _underline_, ++ line breaks, \\ escapes, ``` literal
blocks, and tab-indented text under a line (a definition).
"""
import re
import sys


def inline(text: str) -> str:
    """*bold*, _underline_ and ++ in a chunk of text (may span lines)."""
    text = text.replace("\\_", "\0U").replace("\\*", "\0S")
    # scdoc: a delimiter starts or ends emphasis only at a word boundary.
    text = re.sub(r"(?<![\w\\])\*([^*]+?)\*(?!\w)", r"**\1**", text)
    text = re.sub(r"(?<![\w\\])_([^_]+?)_(?!\w)", r"*\1*", text)
    text = text.replace("\0U", "\\_").replace("\0S", "\\*")
    return re.sub(r"[ \t]*\+\+$", "  ", text, flags=re.M)


def convert(lines: list[str]) -> str:
    title = lines[0].strip()
    m = re.fullmatch(r"([\w.-]+)\((\d)\)", title)
    if not m:
        raise SystemExit(f"scd2md: the first line is not NAME(SECTION): {title!r}")
    name, section = m.group(1), m.group(2)
    chunks: list[tuple[bool, list[str]]] = [(False, [
        f"# {name}({section})", "",
        f"<!-- Generated from docs/man/{name}.{section}.scd by docs/man/build.sh --markdown: edit that file. -->"])]
    literal = False
    for raw in lines[1:]:
        line = raw.rstrip("\n")
        if line.strip().startswith("```"):
            literal = not literal
            chunks.append((literal, ["```toml" if literal and name == "fedlogin.conf" else "```"]))
            continue
        if literal:
            chunks[-1][1].append(line)
        elif line.startswith("## "):
            chunks[-1][1].append("### " + line[3:])
        elif line.startswith("# "):
            chunks[-1][1].append("## " + line[2:])
        elif line.startswith("\t"):
            chunks[-1][1].append("  " + line.lstrip("\t"))
        else:
            chunks[-1][1].append(line)
    text = "\n".join("\n".join(body) if lit else inline("\n".join(body)) for lit, body in chunks) + "\n"
    # A definition (a term line, then indented lines) becomes a list item.
    return re.sub(r"\n(\*[^\n]+)\n(  )", r"\n- \1  \n\2", text)


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: scd2md.py PAGE.scd > PAGE.md", file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        sys.stdout.write(convert(f.readlines()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
