// A stand-in for uPlot in component tests only: jsdom has no canvas, so the real chart cannot
// draw there (the Chromium end-to-end tests cover it). It records what each plot was given and
// lets a test fire the hooks a drag or a hover would.
import type uPlot from 'uplot'

export class FakeUPlot {
  static made: FakeUPlot[] = []
  options: uPlot.Options
  data: uPlot.AlignedData
  select = { left: 0, top: 0, width: 0, height: 0 }
  cursor: { idx: number | null } = { idx: null }
  destroyed = false

  constructor(options: uPlot.Options, data: uPlot.AlignedData) {
    this.options = options
    this.data = data
    FakeUPlot.made.push(this)
  }

  setData(data: uPlot.AlignedData) {
    this.data = data
  }

  setSize() {}

  setSelect(select: { left: number; top: number; width: number; height: number }) {
    this.select = select
  }

  /** The x axis of the fake is 1 step per pixel. */
  posToVal(position: number) {
    return position
  }

  destroy() {
    this.destroyed = true
  }

  /** What dragging from x = `from` to x = `to` does. */
  drag(from: number, to: number) {
    this.select = { left: from, top: 0, width: to - from, height: 10 }
    for (const hook of this.options.hooks?.setSelect ?? []) hook?.(this as unknown as uPlot)
  }

  hover(index: number | null) {
    this.cursor.idx = index
    for (const hook of this.options.hooks?.setCursor ?? []) hook?.(this as unknown as uPlot)
  }

  static live(): FakeUPlot[] {
    return FakeUPlot.made.filter((plot) => !plot.destroyed)
  }
}
