// The one place that touches uPlot: make the plot, give it new data or a new size, destroy it.
import { useEffect, useRef } from 'react'
import uPlot from 'uplot'
import type { ChartData, StepRange } from './chartData'

export const PLOT_HEIGHT = 220

const COLORS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2', '#ca8a04', '#db2777', '#4b5563', '#65a30d']

export const colorOf = (index: number) => COLORS[index % COLORS.length]

interface PlotProps {
  chart: ChartData
  labels: string[]
  width: number
  xLabel: string
  zoom: StepRange | null
  /** A range the user selected by dragging; in pixels of the plot, turned into steps here. */
  onSelect(a: number, b: number): void
  /** The index into the x array under the cursor, or null when it leaves. */
  onHover(index: number | null): void
}

export function Plot({ chart, labels, width, xLabel, zoom, onSelect, onHover }: PlotProps) {
  const box = useRef<HTMLDivElement>(null)
  const plot = useRef<uPlot | null>(null)
  // What the plot is built from is read here when it is (re)built: new data or a new handler
  // must not rebuild it.
  const latest = useRef({ chart, width, onSelect, onHover })
  useEffect(() => {
    latest.current = { chart, width, onSelect, onHover }
  })
  const labelKey = labels.join('\u0000')
  const from = zoom?.from
  const to = zoom?.to

  useEffect(() => {
    if (!box.current) return
    const range = from === undefined || to === undefined ? null : { from, to }
    const { chart: data, width: pixels } = latest.current
    const options = plotOptions(labelKey.split('\u0000'), pixels, xLabel, range, data, latest)
    const made = new uPlot(options, data.data as uPlot.AlignedData, box.current)
    plot.current = made
    return () => {
      made.destroy()
      plot.current = null
    }
  }, [labelKey, xLabel, from, to])

  useEffect(() => {
    plot.current?.setData(chart.data as uPlot.AlignedData)
  }, [chart])

  useEffect(() => {
    plot.current?.setSize({ width, height: PLOT_HEIGHT })
  }, [width])

  return <div ref={box} className="plot" />
}

type Handlers = { current: Pick<PlotProps, 'onSelect' | 'onHover'> }

function plotOptions(
  labels: string[],
  width: number,
  xLabel: string,
  zoom: StepRange | null,
  chart: ChartData,
  handlers: Handlers,
): uPlot.Options {
  const series: uPlot.Series[] = [{ label: xLabel }]
  labels.forEach((label, i) => {
    const edge: uPlot.Series = { label: `${label} (edge)`, stroke: 'transparent', width: 0, points: { show: false } }
    // Several jobs share one x array, each with gaps where the others have points: join them.
    series.push({ label, stroke: colorOf(i), width: 1.5, points: { show: false }, spanGaps: labels.length > 1 }, edge, {
      ...edge,
    })
  })
  return {
    width,
    height: PLOT_HEIGHT,
    series,
    bands: chart.bands.map(([high, low], i) => ({ series: [high, low], fill: `${colorOf(i)}22` })),
    scales: { x: zoom ? { time: false, range: [zoom.from, zoom.to] } : { time: false } },
    axes: [{ label: xLabel }, { size: 60 }],
    legend: { show: false },
    // The chart zooms by fetching finer buckets for the range, not by stretching what it has.
    cursor: { drag: { x: true, y: false, setScale: false } },
    hooks: {
      setSelect: [
        (u) => {
          const { left, width: dragged } = u.select
          if (dragged < 3) return
          handlers.current.onSelect(u.posToVal(left, 'x'), u.posToVal(left + dragged, 'x'))
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false)
        },
      ],
      setCursor: [(u) => handlers.current.onHover(u.cursor.idx ?? null)],
    },
  }
}
