using System.Text.Json;
using MoeSharp.Cli.Output;
using MoeSharp.Telemetry;
using SkiaSharp;

namespace MoeSharp.Tests.Cli;

/// <summary>The traffic report as a <c>--metrics</c> line and as a heatmap PNG.</summary>
public class TrafficOutputTests
{
    private static TrafficReport Sample()
    {
        var report = new TrafficReport(3, 6);
        for (int s = 0; s < 3; s++)
        {
            for (int e = 0; e < 6; e++)
                report.AddSent(s, e, 10 * s + e, 100 * (10 * s + e));
        }
        report.AddWait(2, 0, 1.5);
        return report;
    }

    [Fact]
    public void MetricsLineCarriesTheMatrices()
    {
        string json = TrafficMetrics.ToRecord("run", 7, Sample()).With("dim", 64).ToJson();
        using JsonDocument doc = JsonDocument.Parse(json);
        JsonElement root = doc.RootElement;
        Assert.Equal(MetricsRecord.Schema, root.GetProperty("schema").GetString());
        Assert.Equal("run", root.GetProperty("command").GetString());
        Assert.Equal("traffic", root.GetProperty("event").GetString());
        Assert.Equal(7, root.GetProperty("step").GetInt32());
        Assert.Equal(3, root.GetProperty("world").GetInt32());
        Assert.Equal(6, root.GetProperty("experts").GetInt32());
        // source 1 → rank 2 holds experts 4 and 5: 14 + 15 rows
        Assert.Equal(29, root.GetProperty("rows_between_ranks")[1][2].GetInt64());
        Assert.Equal(2900, root.GetProperty("bytes_between_ranks")[1][2].GetInt64());
        Assert.Equal(25, root.GetProperty("rows_by_source_expert")[2][5].GetInt64());
        Assert.Equal(1.5, root.GetProperty("wait_ms")[2][0].GetDouble());
        Assert.Equal(Sample().TotalRows, root.GetProperty("rows_total").GetInt64());
        Assert.Equal(Sample().RankBalancedness, root.GetProperty("rank_balancedness").GetDouble());
        Assert.Equal(6, root.GetProperty("rows_per_expert").GetArrayLength());
        Assert.Equal(64, root.GetProperty("dim").GetInt32());
    }

    [Theory]
    [InlineData((int)TrafficView.RowsBetweenRanks)]
    [InlineData((int)TrafficView.RowsBySourceAndExpert)]
    public void HeatmapPlacesEveryCellWhereItsValueIs(int viewNumber)
    {
        var view = (TrafficView)viewNumber;
        TrafficReport report = Sample();
        string path = Path.Combine(Path.GetTempPath(), $"moesharp-traffic-{Guid.NewGuid():N}.png");
        try
        {
            (ScottPlot.Plot plot, ScottPlot.Plottables.Heatmap heatmap) = TrafficHeatmap.Build(report, view);
            plot.SavePng(path, 640, 480);
            byte[] bytes = File.ReadAllBytes(path);
            Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4]);
            using SKBitmap bitmap = SKBitmap.Decode(path);
            Assert.Equal((640, 480), (bitmap.Width, bitmap.Height));

            long[,] matrix = view == TrafficView.RowsBetweenRanks ? report.RowsBetweenRanks() : BySourceExpert(report);
            int rows = matrix.GetLength(0),
                columns = matrix.GetLength(1);
            long max = matrix.Cast<long>().Max();
            for (int r = 0; r < rows; r++)
            {
                for (int c = 0; c < columns; c++)
                {
                    ScottPlot.Pixel pixel = plot.GetPixel(TrafficHeatmap.CellCenter(rows, r, c));
                    SKColor actual = bitmap.GetPixel((int)pixel.X, (int)pixel.Y);
                    ScottPlot.Color expected = heatmap.Colormap.GetColor((double)matrix[r, c] / max);
                    bool close =
                        Math.Abs(actual.Red - expected.R) <= 3
                        && Math.Abs(actual.Green - expected.G) <= 3
                        && Math.Abs(actual.Blue - expected.B) <= 3;
                    Assert.True(
                        close,
                        $"cell ({r}, {c}) = {matrix[r, c]} at pixel ({pixel.X}, {pixel.Y}): {actual} "
                            + $"but the colour map gives {expected}"
                    );
                }
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void SaveWritesAPngOfTheRequestedSize()
    {
        string path = Path.Combine(Path.GetTempPath(), $"moesharp-traffic-{Guid.NewGuid():N}.png");
        try
        {
            TrafficHeatmap.Save(path, new TrafficReport(2, 2), TrafficView.BytesBetweenRanks, 300, 200);
            using SKBitmap bitmap = SKBitmap.Decode(path);
            Assert.Equal((300, 200), (bitmap.Width, bitmap.Height));
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static long[,] BySourceExpert(TrafficReport report)
    {
        var m = new long[report.WorldSize, report.NumExperts];
        for (int s = 0; s < report.WorldSize; s++)
        {
            for (int e = 0; e < report.NumExperts; e++)
                m[s, e] = report.Rows(s, e);
        }
        return m;
    }
}
