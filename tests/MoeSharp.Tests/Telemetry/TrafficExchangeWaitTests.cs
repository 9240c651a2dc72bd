using MoeSharp.Telemetry;

namespace MoeSharp.Tests.Telemetry;

/// <summary>The per-exchange wait matrix of <see cref="TrafficReport"/>.</summary>
public class TrafficExchangeWaitTests
{
    [Fact]
    public void ExchangeWaits_AddUp_ReduceInRankOrder_AndSurviveTheFlatRoundTrip()
    {
        var a = new TrafficReport(2, 4);
        var b = new TrafficReport(2, 4);
        a.AddExchangeWait(0, TrafficExchange.Counts, 0.5);
        a.AddExchangeWait(0, TrafficExchange.Counts, 0.25);
        b.AddExchangeWait(1, TrafficExchange.RowsBack, 2.0);
        Assert.Equal([0.75, 0, 0, 0, 0, 0], a.ExchangeWaitMilliseconds.ToArray());

        TrafficReport sum = TrafficReport.Reduce([a, b]);
        Assert.Equal([0.75, 0, 0, 0, 0, 2.0], sum.ExchangeWaitMilliseconds.ToArray());
        var copy = new TrafficReport(
            2,
            4,
            sum.RowCounts,
            sum.ByteCounts,
            sum.WaitMilliseconds,
            sum.ExchangeWaitMilliseconds
        );
        Assert.Equal(sum.ExchangeWaitMilliseconds.ToArray(), copy.ExchangeWaitMilliseconds.ToArray());
        Assert.Throws<ArgumentException>(() =>
            new TrafficReport(2, 4, sum.RowCounts, sum.ByteCounts, sum.WaitMilliseconds, new double[5])
        );
    }

    [Fact]
    public void ExchangeWaits_RejectBadRanksExchangesAndTimes()
    {
        var report = new TrafficReport(2, 2);
        Assert.Throws<ArgumentOutOfRangeException>(() => report.AddExchangeWait(2, TrafficExchange.Counts, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => report.AddExchangeWait(0, (TrafficExchange)3, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => report.AddExchangeWait(0, TrafficExchange.Counts, -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => report.AddExchangeWait(0, TrafficExchange.Counts, double.NaN));
        Assert.All(report.ExchangeWaitMilliseconds.ToArray(), ms => Assert.Equal(0.0, ms));
    }
}
