using MoeSharp.Telemetry;

namespace MoeSharp.Tests.Telemetry;

/// <summary>The traffic report: accumulation, rank and expert views, balancedness, the rank-order reduction.</summary>
public class TrafficReportTests
{
    /// <summary>4 ranks, 8 experts (2 per rank); source s sends (s + 1)·(e + 1) rows of 10 bytes to expert e.</summary>
    private static TrafficReport Sample()
    {
        var report = new TrafficReport(4, 8);
        for (int s = 0; s < 4; s++)
        {
            for (int e = 0; e < 8; e++)
                report.AddSent(s, e, (s + 1) * (e + 1), 10L * (s + 1) * (e + 1));
        }
        return report;
    }

    [Fact]
    public void ViewsFoldExpertsIntoTheirRanks()
    {
        TrafficReport report = Sample();
        Assert.Equal(2, report.ExpertsPerRank);
        Assert.Equal(3, report.DestinationOf(7));
        Assert.Equal(0, report.DestinationOf(1));
        long[,] between = report.RowsBetweenRanks();
        // source 2 to rank 1 = experts 2 and 3: 3·3 + 3·4
        Assert.Equal(21, between[2, 1]);
        Assert.Equal(1 * 1 + 1 * 2, between[0, 0]);
        Assert.Equal(210, report.BytesBetweenRanks()[2, 1]);
        // expert e receives (1+2+3+4)(e+1) = 10(e+1)
        Assert.Equal(Enumerable.Range(0, 8).Select(e => 10L * (e + 1)).ToArray(), report.RowsPerExpert());
        Assert.Equal(new long[] { 30, 70, 110, 150 }, report.RowsPerRank());
        Assert.Equal(360, report.TotalRows);
        Assert.Equal(3600, report.TotalBytes);
        Assert.Equal(4 * 5, report.Rows(3, 4));
    }

    [Fact]
    public void BalancednessIsMeanOverMax()
    {
        TrafficReport report = Sample();
        Assert.Equal(90.0 / 150.0, report.RankBalancedness);
        Assert.Equal(45.0 / 80.0, report.ExpertBalancedness);
        var even = new TrafficReport(2, 2);
        even.AddSent(0, 0, 5, 5);
        even.AddSent(1, 1, 5, 5);
        Assert.Equal(1.0, even.RankBalancedness);
        Assert.Equal(1.0, new TrafficReport(3, 3).RankBalancedness); // nothing moved
        var allToOne = new TrafficReport(4, 4);
        for (int s = 0; s < 4; s++)
            allToOne.AddSent(s, 2, 10, 10);
        Assert.Equal(0.25, allToOne.RankBalancedness);
        Assert.Equal(0.25, allToOne.ExpertBalancedness);
    }

    [Fact]
    public void ReductionOfPerRankPartialsEqualsTheWholeReport()
    {
        TrafficReport whole = Sample();
        var partials = new List<TrafficReport>();
        for (int s = 0; s < 4; s++)
        {
            var part = new TrafficReport(4, 8);
            for (int e = 0; e < 8; e++)
                part.AddSent(s, e, whole.Rows(s, e), whole.ByteCounts[s * 8 + e]);
            for (int p = 0; p < 4; p++)
                part.AddWait(s, p, 0.1 * (s * 4 + p));
            partials.Add(part);
        }
        TrafficReport reduced = TrafficReport.Reduce(partials);
        Assert.Equal(whole.RowCounts.ToArray(), reduced.RowCounts.ToArray());
        Assert.Equal(whole.ByteCounts.ToArray(), reduced.ByteCounts.ToArray());
        Assert.Equal(0.1 * 9, reduced.WaitMilliseconds[9]);
        TrafficReport again = TrafficReport.Reduce(partials);
        Assert.Equal(reduced.WaitMilliseconds.ToArray(), again.WaitMilliseconds.ToArray());
    }

    [Fact]
    public void WaitTimesAreAddedInRankOrder()
    {
        // Floating-point addition is not associative: rank order gives ((0 + 1) + 1e16) − 1e16 = 0, while adding the
        // last two first would give 1. Every rank reducing the same partials in rank order gets the same bits.
        double[] parts = [1.0, 1e16, -1e16];
        var partials = parts
            .Select(value =>
            {
                var part = new TrafficReport(2, 2);
                if (value >= 0)
                    part.AddWait(0, 1, value);
                return (part, value);
            })
            .ToList();
        // AddWait refuses negative times; build the negative partial from flat arrays as a gathered one would be.
        partials[2] = (new TrafficReport(2, 2, new long[4], new long[4], new double[] { 0, -1e16, 0, 0 }), -1e16);
        TrafficReport reduced = TrafficReport.Reduce(partials.Select(p => p.part).ToList());
        Assert.Equal(0.0, reduced.WaitMilliseconds[1]);
        TrafficReport reversed = TrafficReport.Reduce(partials.Select(p => p.part).Reverse().ToList());
        Assert.Equal(1.0, reversed.WaitMilliseconds[1]);
    }

    [Fact]
    public void FlatArraysRoundTrip()
    {
        TrafficReport report = Sample();
        report.AddWait(1, 3, 2.5);
        var copy = new TrafficReport(4, 8, report.RowCounts, report.ByteCounts, report.WaitMilliseconds);
        Assert.Equal(report.RowCounts.ToArray(), copy.RowCounts.ToArray());
        Assert.Equal(2.5, copy.WaitMilliseconds[1 * 4 + 3]);
        Assert.Throws<ArgumentException>(() => new TrafficReport(4, 8, new long[31], new long[32], new double[16]));
    }

    [Fact]
    public void BadArgumentsAreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new TrafficReport(0, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TrafficReport(3, 4)); // 4 experts over 3 ranks
        var report = new TrafficReport(2, 4);
        Assert.Throws<ArgumentOutOfRangeException>(() => report.AddSent(2, 0, 1, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => report.AddSent(0, 4, 1, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => report.AddSent(0, 0, -1, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => report.AddWait(0, 1, double.NaN));
        Assert.Throws<ArgumentOutOfRangeException>(() => report.AddWait(0, 1, double.PositiveInfinity));
        Assert.Throws<ArgumentException>(() => TrafficReport.Reduce([]));
        Assert.Throws<ArgumentException>(() => TrafficReport.Reduce([report, new TrafficReport(2, 2)]));
    }
}
