"""Draw an AttentionProbe's numbers: image->text share per step and per block, plain vs TACA.

Left: the mean over blocks for each step, plain and with TACA (the steps where gamma acted
shaded), and per block over the steps where gamma acted. Right: heatmaps (steps x blocks) of the
plain share and of what TACA adds to it.
Pillow only (ComfyUI ships it).
"""
from PIL import Image, ImageDraw, ImageFont

W, H = 1200, 720
BG, FG, GRID = (24, 24, 24), (225, 225, 225), (70, 70, 70)
PLAIN, TACA, WINDOW = (150, 150, 150), (240, 160, 48), (70, 52, 20)


def _font(size):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one fixed size
        return ImageFont.load_default()


def steps_of(data: dict) -> list:
    """Model calls grouped by sigma (cond and uncond of one step averaged), highest sigma first.

    Each entry: (sigma, gamma, [(plain, taca) per block index]).
    """
    by_sigma = {}
    for call in data["calls"]:
        by_sigma.setdefault(call["sigma"], []).append(call)
    out = []
    for sigma in sorted(by_sigma, reverse=True):
        calls = by_sigma[sigma]
        n_blocks = max(len(c["blocks"]) for c in calls)
        blocks = []
        for i in range(n_blocks):
            entries = [c["blocks"][i] for c in calls if i < len(c["blocks"])]
            blocks.append((sum(e["share_plain"] for e in entries) / len(entries),
                           sum(e["share_taca"] for e in entries) / len(entries)))
        out.append((sigma, max(c["gamma"] for c in calls), blocks))
    return out


def _colour(value, lo, hi):
    """Dark blue -> orange -> white."""
    x = 0.0 if hi <= lo else min(max((value - lo) / (hi - lo), 0.0), 1.0)
    stops = [(20, 30, 90), (200, 90, 40), (250, 200, 60), (255, 255, 240)]
    pos = x * (len(stops) - 1)
    i = min(int(pos), len(stops) - 2)
    f = pos - i
    return tuple(round(a + (b - a) * f) for a, b in zip(stops[i], stops[i + 1]))


def _axes(draw, box, lo, hi, small, fmt="{:.3f}"):
    x0, y0, x1, y1 = box
    for k in range(5):
        v = lo + (hi - lo) * k / 4
        y = y1 - (v - lo) / (hi - lo) * (y1 - y0)
        draw.line([x0, y, x1, y], fill=GRID)
        draw.text((x0 - 6, y), fmt.format(v), fill=FG, font=small, anchor="rm")
    return lambda v: y1 - (v - lo) / (hi - lo) * (y1 - y0)


def _range(values, pad=0.1):
    lo, hi = min(values), max(values)
    span = (hi - lo) or abs(hi) or 1.0
    return lo - pad * span, hi + pad * span


def _legend(draw, x, y, small):
    for label, colour in (("plain", PLAIN), ("TACA", TACA)):
        draw.rectangle([x, y - 5, x + 22, y + 5], fill=colour)
        draw.text((x + 28, y), label, fill=FG, font=small, anchor="lm")
        x += 90


def _steps_panel(draw, box, steps, font, small):
    """Mean over blocks, per step: plain vs TACA; the steps where gamma acted shaded."""
    x0, y0, x1, y1 = box
    means = [(sum(p for p, _ in b) / len(b), sum(t for _, t in b) / len(b)) for _, _, b in steps]
    y_at = _axes(draw, box, *_range([v for m in means for v in m]), small)
    n = len(steps)
    cell = (x1 - x0) / n
    x_at = lambda i: x0 + (i + 0.5) * cell  # noqa: E731
    for i, (_, gamma, _) in enumerate(steps):
        if gamma != 1.0:
            draw.rectangle([x0 + i * cell, y0, x0 + (i + 1) * cell, y1], fill=WINDOW)
    for series, colour in ((0, PLAIN), (1, TACA)):
        pts = [(x_at(i), y_at(m[series])) for i, m in enumerate(means)]
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=3)
        for x, y in pts:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
    draw.text((x0, y0 - 10), "image->text attention share, mean over joint blocks, per step", fill=FG, font=font,
              anchor="lb")
    draw.text(((x0 + x1) / 2, y1 + 8), f"step 1..{n} (shaded: gamma acted)", fill=FG, font=small, anchor="mt")
    _legend(draw, x1 - 180, y0 + 14, small)


def _blocks_panel(draw, box, steps, font, small):
    """Per joint block, averaged over the steps where gamma acted (else the first step): plain vs TACA bars."""
    x0, y0, x1, y1 = box
    window = [b for _, gamma, b in steps if gamma != 1.0] or [steps[0][2]]
    n_blocks = max(len(b) for b in window)
    pairs = []
    for i in range(n_blocks):
        col = [b[i] for b in window if i < len(b)]
        pairs.append((sum(p for p, _ in col) / len(col), sum(t for _, t in col) / len(col)))
    lo, hi = _range([v for p in pairs for v in p] + [0.0], pad=0.05)
    y_at = _axes(draw, box, max(lo, 0.0), hi, small)
    cell = (x1 - x0) / n_blocks
    bar = cell * 0.38
    for i, (plain, taca) in enumerate(pairs):
        cx = x0 + (i + 0.5) * cell
        draw.rectangle([cx - bar, y_at(plain), cx, y1], fill=PLAIN)
        draw.rectangle([cx, y_at(taca), cx + bar, y1], fill=TACA)
    which = "the steps where gamma acted" if steps and any(g != 1.0 for _, g, _ in steps) else "step 1 (gamma never acted)"
    draw.text((x0, y0 - 10), f"per joint block, mean over {which}", fill=FG, font=font, anchor="lb")
    draw.text(((x0 + x1) / 2, y1 + 8), f"joint block 0..{n_blocks - 1}", fill=FG, font=small, anchor="mt")
    _legend(draw, x1 - 180, y0 + 14, small)


def _heatmap(draw, box, steps, value, lo, hi, title, font, small):
    x0, y0, x1, y1 = box
    n_blocks = max(len(b) for _, _, b in steps)
    cw, ch = (x1 - x0) / n_blocks, (y1 - y0) / len(steps)
    for r, (_, _, blocks) in enumerate(steps):
        for c, pair in enumerate(blocks):
            draw.rectangle([x0 + c * cw, y0 + r * ch, x0 + (c + 1) * cw, y0 + (r + 1) * ch],
                           fill=_colour(value(pair), lo, hi))
    draw.rectangle(box, outline=GRID)
    draw.text((x0, y0 - 10), title, fill=FG, font=font, anchor="lb")
    draw.text(((x0 + x1) / 2, y1 + 8), f"joint block 0..{n_blocks - 1}", fill=FG, font=small, anchor="mt")
    draw.text((x0 - 6, y0), "step 1", fill=FG, font=small, anchor="rt")
    draw.text((x0 - 6, y1), f"{len(steps)}", fill=FG, font=small, anchor="rb")
    for i in range(100):  # its colour scale
        x = x0 + i * (x1 - x0) / 100
        draw.rectangle([x, y1 + 34, x + (x1 - x0) / 100 + 1, y1 + 46], fill=_colour(lo + (hi - lo) * i / 99, lo, hi))
    draw.text((x0, y1 + 52), f"{lo:.3f}", fill=FG, font=small, anchor="lt")
    draw.text((x1, y1 + 52), f"{hi:.3f}", fill=FG, font=small, anchor="rt")


def render_probe_plot(data: dict, title: str = "") -> Image.Image:
    img = Image.new("RGB", (W, H), BG)
    draw = ImageDraw.Draw(img)
    font, small = _font(16), _font(13)
    steps = steps_of(data)
    if not steps:
        draw.text((W / 2, H / 2), "The probe saw no joint attention call (was the model sampled?)", fill=FG,
                  font=font, anchor="mm")
        return img
    draw.text((20, 14), title or "TACA attention probe", fill=FG, font=font)
    _steps_panel(draw, (80, 80, 640, 330), steps, font, small)
    _blocks_panel(draw, (80, 420, 640, 670), steps, font, small)
    plain = [p for _, _, b in steps for p, _ in b]
    _heatmap(draw, (730, 80, 930, 620), steps, lambda pair: pair[0], min(plain), max(plain),
             "plain share", font, small)
    gains = [t - p for _, _, b in steps for p, t in b]
    _heatmap(draw, (990, 80, 1180, 620), steps, lambda pair: pair[1] - pair[0], min(0.0, min(gains)),
             max(max(gains), 1e-6), "TACA - plain", font, small)
    return img
