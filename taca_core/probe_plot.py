"""Draw an AttentionProbe's numbers: image->text share per step and per block, plain vs TACA.

Left: the mean over blocks for each step, plain and with TACA (steps where gamma acted shaded).
Right: two heatmaps (steps x blocks) on one colour scale, plain and with TACA.
Pillow only (ComfyUI ships it).
"""
from PIL import Image, ImageDraw, ImageFont

W, H = 1200, 520
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


def _line_panel(draw, box, steps, font, small):
    x0, y0, x1, y1 = box
    means = [(sum(p for p, _ in b) / len(b), sum(t for _, t in b) / len(b)) for _, _, b in steps]
    hi = max(max(m) for m in means) * 1.15 or 1.0
    n = len(steps)
    x_at = (lambda i: (x0 + x1) / 2) if n == 1 else (lambda i: x0 + i * (x1 - x0) / (n - 1))
    y_at = lambda v: y1 - v / hi * (y1 - y0)  # noqa: E731
    half = (x1 - x0) / max(2 * (n - 1), 2)
    for i, (_, gamma, _) in enumerate(steps):
        if gamma != 1.0:
            draw.rectangle([max(x0, x_at(i) - half), y0, min(x1, x_at(i) + half), y1], fill=WINDOW)
    for k in range(5):
        v = hi * k / 4
        draw.line([x0, y_at(v), x1, y_at(v)], fill=GRID)
        draw.text((x0 - 6, y_at(v)), f"{v:.2f}", fill=FG, font=small, anchor="rm")
    for series, colour in ((0, PLAIN), (1, TACA)):
        pts = [(x_at(i), y_at(m[series])) for i, m in enumerate(means)]
        if len(pts) > 1:
            draw.line(pts, fill=colour, width=3)
        for x, y in pts:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=colour)
    draw.text(((x0 + x1) / 2, y1 + 8), f"step (1..{n}, by sigma; shaded: gamma acted)", fill=FG, font=small,
              anchor="mt")
    draw.text((x0, y0 - 8), "image->text share, mean over blocks", fill=FG, font=font, anchor="lb")
    draw.line([x1 - 150, y0 + 12, x1 - 125, y0 + 12], fill=PLAIN, width=3)
    draw.text((x1 - 120, y0 + 12), "plain", fill=FG, font=small, anchor="lm")
    draw.line([x1 - 75, y0 + 12, x1 - 50, y0 + 12], fill=TACA, width=3)
    draw.text((x1 - 45, y0 + 12), "TACA", fill=FG, font=small, anchor="lm")


def _heatmap(draw, box, steps, which, lo, hi, title, font, small):
    x0, y0, x1, y1 = box
    n_blocks = max(len(b) for _, _, b in steps)
    cw, ch = (x1 - x0) / n_blocks, (y1 - y0) / len(steps)
    for r, (_, _, blocks) in enumerate(steps):
        for c, pair in enumerate(blocks):
            draw.rectangle([x0 + c * cw, y0 + r * ch, x0 + (c + 1) * cw, y0 + (r + 1) * ch],
                           fill=_colour(pair[which], lo, hi))
    draw.rectangle(box, outline=GRID)
    draw.text((x0, y0 - 8), title, fill=FG, font=font, anchor="lb")
    draw.text(((x0 + x1) / 2, y1 + 8), f"joint block (0..{n_blocks - 1})", fill=FG, font=small, anchor="mt")
    draw.text((x0 - 6, y0), "step 1", fill=FG, font=small, anchor="rt")
    draw.text((x0 - 6, y1), f"{len(steps)}", fill=FG, font=small, anchor="rb")


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
    _line_panel(draw, (70, 70, 470, 440), steps, font, small)
    values = [v for _, _, b in steps for pair in b for v in pair]
    lo, hi = min(values), max(values)
    _heatmap(draw, (560, 70, 840, 440), steps, 0, lo, hi, "plain", font, small)
    _heatmap(draw, (890, 70, 1170, 440), steps, 1, lo, hi, "with TACA", font, small)
    for i in range(100):  # shared colour scale
        x = 560 + i * 5.5
        draw.rectangle([x, 478, x + 5.5, 492], fill=_colour(lo + (hi - lo) * i / 99, lo, hi))
    draw.text((555, 485), f"{lo:.3f}", fill=FG, font=small, anchor="rm")
    draw.text((1120, 485), f"{hi:.3f}", fill=FG, font=small, anchor="lm")
    return img
