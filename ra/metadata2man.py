#!/usr/bin/env python3
"""The manual page of an OCF resource agent, from its meta-data (read on
standard input): name, description (longdesc), parameters, actions and
defaults, as in `crm ra info`.  Usage: metadata2man.py PROVIDER VERSION

In a longdesc, blank lines separate paragraphs and indented lines are shown
as they are (examples)."""
import sys
import xml.etree.ElementTree as ET


def esc(s):
    """Text for troff: backslashes, and no control character at a line start."""
    s = s.replace("\\", "\\e")
    return "\n".join("\\&" + l if l[:1] in (".", "'") else l for l in s.split("\n"))


def paragraphs(text):
    """A longdesc as troff paragraphs (.PP) and verbatim blocks (.EX)."""
    out, para, verbatim = [], [], []

    def flush():
        if para:
            out.extend([".PP", esc(" ".join(para))])
            para.clear()
        if verbatim:
            out.extend([".PP", ".EX", esc("\n".join(verbatim)), ".EE"])
            verbatim.clear()

    for line in (text or "").strip("\n").split("\n"):
        if not line.strip():
            flush()
        elif line[:1] in (" ", "\t"):
            if para:
                flush()
            verbatim.append(line.rstrip())
        else:
            if verbatim:
                flush()
            para.append(line.strip())
    flush()
    return out


def main():
    provider, version = sys.argv[1], sys.argv[2]
    ra = ET.parse(sys.stdin).getroot()
    name = ra.get("name")
    title = "ocf_%s_%s" % (provider, name)
    out = [
        "'\\\" t",  # tbl for the table of actions
        '.TH %s 7 "" "hagent %s" "OCF resource agents"' % (title.upper(), esc(version)),
        ".SH NAME",
        "%s \\- %s" % (title, esc(ra.findtext("shortdesc", "").strip())),
        ".SH SYNOPSIS",
        "\\fBocf:%s:%s\\fR" % (provider, name),
    ]
    for p in ra.iter("parameter"):
        opt = p.get("required") != "1"
        out.append("%s\\fB%s\\fR=\\fIvalue\\fR%s" % ("[" if opt else "", p.get("name"), "]" if opt else ""))
    out += [".SH DESCRIPTION"] + paragraphs(ra.findtext("longdesc"))

    out.append(".SH PARAMETERS")
    for p in ra.iter("parameter"):
        c = p.find("content")
        attrs = [c.get("type")]
        if p.get("required") == "1":
            attrs.append("required")
        if p.get("unique") == "1":
            attrs.append("unique")
        if c.get("default"):
            attrs.append("default %s" % c.get("default"))
        # .TP's body: further paragraphs stay indented (.IP, not .PP)
        body = [".IP" if l == ".PP" else l for l in paragraphs(p.findtext("longdesc"))]
        out += [".TP", "\\fB%s\\fR (%s)" % (p.get("name"), esc(", ".join(attrs)))] + body[1:]
    out += [".SH ACTIONS", "Supported actions and their default timeouts:", ".PP", ".TS", "l l l l.",
            "\\fBaction\\fR\ttimeout\tinterval\tdepth"]
    for a in ra.iter("action"):
        out.append("\t".join([a.get("name"), a.get("timeout"), a.get("interval", "-"),
                              a.get("depth", "-")]))
    out += [".TE", ".SH SEE ALSO",
            "\\fBhactl\\fR(8), \\fBhagentd\\fR(8), \\fBocf-tester\\fR(8), \\fBcrm_resource\\fR(8)"]
    sys.stdout.write("\n".join(out) + "\n")


main()
