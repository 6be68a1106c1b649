import { describe, expect, it } from 'vitest'
import type { Bucket, Series } from '../../api/metrics'
import { bucketsFor, LatestOnly, parseZooms, selectionRange, seriesQuery, toChartData, withZoom } from './chartData'

const point = (step: number, value: number): Bucket => ({
  first_step: step,
  last_step: step,
  points: 1,
  min: value,
  max: value,
  mean: value,
  last: value,
})

const series = (buckets: Bucket[], width = 1): Series => ({ key: 'loss', points: buckets.length, width, buckets })

describe('bucket answers as uPlot data', () => {
  it('puts raw points at their steps, the mean as the line and min/max as the band', () => {
    const chart = toChartData([series([point(0, 1), point(1, 0.5), point(2, 0.25)])])

    expect(chart.data).toEqual([
      [0, 1, 2],
      [1, 0.5, 0.25],
      [1, 0.5, 0.25],
      [1, 0.5, 0.25],
    ])
    expect(chart.bands).toEqual([[3, 2]])
    expect(chart.width).toBe(1)
    expect(chart.empty).toBe(false)
  })

  it('places a bucket at the middle of its steps, with its extremes as the band', () => {
    const bucket = { first_step: 0, last_step: 99, points: 100, min: 0.1, max: 0.9, mean: 0.4, last: 0.2 }
    const chart = toChartData([series([bucket, { ...bucket, first_step: 100, last_step: 199, mean: 0.3 }], 100)])

    expect(chart.data[0]).toEqual([49, 149])
    expect(chart.data[1]).toEqual([0.4, 0.3])
    expect(chart.data[2]).toEqual([0.1, 0.1])
    expect(chart.data[3]).toEqual([0.9, 0.9])
    expect(chart.width).toBe(100)
  })

  it('aligns several jobs on one x, with nulls where a job has no point, and skips a missing job', () => {
    const chart = toChartData([series([point(0, 1), point(2, 3)]), null, series([point(1, 5)])])

    expect(chart.data[0]).toEqual([0, 1, 2])
    expect(chart.data[1]).toEqual([1, null, 3])
    expect(chart.data[4]).toEqual([null, null, null])
    expect(chart.data[7]).toEqual([null, 5, null])
    expect(chart.bands).toEqual([
      [3, 2],
      [6, 5],
      [9, 8],
    ])
  })

  it('leaves a gap for a NaN or infinite value rather than drawing it', () => {
    const nan: Bucket = { ...point(1, Number.NaN), min: null, max: null, mean: null }
    const chart = toChartData([series([point(0, 1), nan, point(2, Number.POSITIVE_INFINITY)])])

    expect(chart.data[1]).toEqual([1, null, null])
  })

  it('says when there is nothing to draw', () => {
    expect(toChartData([series([])]).empty).toBe(true)
    expect(toChartData([null]).empty).toBe(true)
  })
})

describe('what the chart asks the series API for', () => {
  it('asks for about one bucket per pixel, in steps of 100 so a small resize fetches nothing', () => {
    expect(bucketsFor(0)).toBe(100)
    expect(bucketsFor(601)).toBe(700)
    expect(bucketsFor(640)).toBe(700)
    expect(bucketsFor(1_000_000)).toBe(10_000)
  })

  it('asks for the whole series when not zoomed, and for just the range when zoomed', () => {
    expect(seriesQuery('loss', 600, null)).toEqual({ key: 'loss', buckets: 600 })
    expect(seriesQuery('loss', 600, { from: 1000, to: 2000 })).toEqual({
      key: 'loss',
      buckets: 600,
      first_step: 1000,
      last_step: 2000,
    })
  })

  it('turns a dragged selection into whole steps, either way round', () => {
    expect(selectionRange(10.4, 2.2)).toEqual({ from: 3, to: 10 })
    expect(selectionRange(5.2, 5.8)).toBeNull()
    expect(selectionRange(Number.NaN, 3)).toBeNull()
  })
})

describe('the zoom in the address', () => {
  it('reads key:from-to, keys with colons and negative steps included, and ignores nonsense', () => {
    const zooms = parseZooms(['loss:10-20', 'eval:acc:-5-5', 'bad', 'x:9-1', 'y:a-b'])

    expect([...zooms]).toEqual([
      ['loss', { from: 10, to: 20 }],
      ['eval:acc', { from: -5, to: 5 }],
    ])
  })

  it('sets and clears one key, keeping the other zooms and params', () => {
    const search = new URLSearchParams('tab=metrics&zoom=loss:1-2&zoom=acc:3-4')

    const zoomed = withZoom(search, 'loss', { from: 5, to: 9 })
    expect(zoomed.get('tab')).toBe('metrics')
    expect(zoomed.getAll('zoom')).toEqual(['acc:3-4', 'loss:5-9'])
    expect(withZoom(zoomed, 'acc', null).getAll('zoom')).toEqual(['loss:5-9'])
  })
})

describe('answers that come late', () => {
  it('holds only the newest request current', () => {
    const latest = new LatestOnly()
    const first = latest.begin()
    const second = latest.begin()

    expect(latest.isCurrent(first)).toBe(false)
    expect(latest.isCurrent(second)).toBe(true)
  })
})
