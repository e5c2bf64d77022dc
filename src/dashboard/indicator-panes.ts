/**
 * The pair chart's indicators, computed with the runtime's own IndicatorSet
 * (trading-signals underneath) over the same mid prices the runtime uses
 * (bid and ask points summed, one division), so the value at a closed candle
 * is the one the runtime stored and sent with that close. On the price pane:
 * SMA 20, EMA 20 and Bollinger 20/2; below it RSI 14 with its 30/70 levels,
 * and MACD 12/26/9 (line, signal, histogram).
 */
import { HistogramSeries, LineSeries, LineStyle, type IChartApi, type ISeriesApi, type LineData, type HistogramData, type UTCTimestamp } from "lightweight-charts";
import type { WireCandle } from "../../schemas/candle.ts";
import { IndicatorSet, roundIndicatorValues, type HLC, type IndicatorValues } from "../domain/indicators.ts";

const RSI_PANE = 1;
const MACD_PANE = 2;
/** Price pane three times the height of each indicator pane. */
const PRICE_PANE_STRETCH = 3;

/** Mid high/low/close exactly as the runtime computes it from integer points (candleToMidHLC). */
export function midHLC(c: WireCandle, precision: number): HLC {
  const scale = 10 ** precision;
  const points = (x: number) => Math.round(x * scale);
  const mid = (bid: number, ask: number) => (points(bid) + points(ask)) / (2 * scale);
  return { high: mid(c.bid.h, c.ask.h), low: mid(c.bid.l, c.ask.l), close: mid(c.bid.c, c.ask.c) };
}

type Line = ISeriesApi<"Line">;

export class IndicatorPanes {
  private readonly sma: Line;
  private readonly ema: Line;
  private readonly bands: Line[];
  private readonly rsi: Line;
  private readonly macd: Line;
  private readonly macdSignal: Line;
  private readonly histogram: ISeriesApi<"Histogram">;
  private values: IndicatorValues[] = [];

  constructor(chart: IChartApi) {
    const line = (color: string, pane = 0, style: LineStyle = LineStyle.Solid): Line =>
      chart.addSeries(LineSeries, { color, lineWidth: 1, lineStyle: style, priceLineVisible: false, lastValueVisible: false, crosshairMarkerVisible: false }, pane);
    this.sma = line("#f0b429");
    this.ema = line("#7aa2f7");
    this.bands = [line("#8a94a3", 0, LineStyle.Dotted), line("#8a94a3", 0, LineStyle.Dotted)];
    this.rsi = line("#c792ea", RSI_PANE);
    this.rsi.applyOptions({ lastValueVisible: true, priceFormat: { type: "price", precision: 1, minMove: 0.1 } });
    for (const level of [30, 70]) this.rsi.createPriceLine({ price: level, color: "#3a4350", lineWidth: 1, lineStyle: LineStyle.Dashed, axisLabelVisible: true, title: "" });
    this.histogram = chart.addSeries(HistogramSeries, { priceLineVisible: false, lastValueVisible: false }, MACD_PANE);
    this.macd = line("#7aa2f7", MACD_PANE);
    this.macdSignal = line("#f0b429", MACD_PANE);
    chart.panes()[0]?.setStretchFactor(PRICE_PANE_STRETCH);
  }

  showAverages(visible: boolean): void {
    this.sma.applyOptions({ visible });
    this.ema.applyOptions({ visible });
  }

  showBollinger(visible: boolean): void {
    for (const b of this.bands) b.applyOptions({ visible });
  }

  clear(): void {
    this.values = [];
    for (const s of [this.sma, this.ema, ...this.bands, this.rsi, this.macd, this.macdSignal]) s.setData([]);
    this.histogram.setData([]);
  }

  /** Recompute every indicator over the candles drawn (oldest first). */
  draw(candles: readonly WireCandle[], precision: number): void {
    const set = new IndicatorSet();
    this.values = candles.map((c) => set.update(midHLC(c, precision)));
    const series = (pick: (v: IndicatorValues) => number | null | undefined): LineData<UTCTimestamp>[] =>
      candles.flatMap((c, i) => {
        const value = pick(this.values[i]!);
        return value === null || value === undefined ? [] : [{ time: (c.t / 1000) as UTCTimestamp, value }];
      });
    this.sma.setData(series((v) => v.sma));
    this.ema.setData(series((v) => v.ema));
    this.bands[0]!.setData(series((v) => v.bollinger?.upper));
    this.bands[1]!.setData(series((v) => v.bollinger?.lower));
    this.rsi.setData(series((v) => v.rsi));
    this.macd.setData(series((v) => v.macd?.macd));
    this.macdSignal.setData(series((v) => v.macd?.signal));
    this.histogram.setData(
      candles.flatMap((c, i): HistogramData<UTCTimestamp>[] => {
        const m = this.values[i]!.macd;
        return m ? [{ time: (c.t / 1000) as UTCTimestamp, value: m.histogram, color: m.histogram >= 0 ? "#26a69a88" : "#ef535088" }] : [];
      }),
    );
  }

  /** Values at candle `index`, rounded as the runtime sends them (precision + 3 digits). */
  valuesAt(index: number, precision: number): IndicatorValues | null {
    const v = this.values[index];
    return v ? roundIndicatorValues(v, precision + 3) : null;
  }

  /** Points drawn per series, for tests. */
  counts(): Record<string, number> {
    const n = (pick: (v: IndicatorValues) => unknown) => this.values.filter((v) => pick(v) !== null).length;
    return { sma: n((v) => v.sma), bollinger: n((v) => v.bollinger), rsi: n((v) => v.rsi), macd: n((v) => v.macd) };
  }
}
