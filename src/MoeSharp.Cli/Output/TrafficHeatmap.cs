using System.Globalization;
using MoeSharp.Telemetry;
using ScottPlot;

namespace MoeSharp.Cli.Output;

/// <summary>Which matrix of a <see cref="TrafficReport"/> a heatmap shows.</summary>
internal enum TrafficView
{
    /// <summary>Rows from each source rank (y) to each destination rank (x).</summary>
    RowsBetweenRanks,

    /// <summary>Bytes from each source rank to each destination rank.</summary>
    BytesBetweenRanks,

    /// <summary>Rows from each source rank to each expert.</summary>
    RowsBySourceAndExpert,
}

/// <summary>
/// Draws a traffic matrix as a heatmap PNG with ScottPlot: one cell per (source rank, destination) with source rank 0
/// at the top, the colour scale from 0 to the largest cell (Viridis), and a colour bar.
/// </summary>
internal static class TrafficHeatmap
{
    /// <summary>
    /// Writes <paramref name="view"/> of <paramref name="report"/> to <paramref name="path"/>, whole or not at all
    /// (<see cref="OutputPaths.ReplaceWhole"/>).
    /// </summary>
    public static void Save(
        string path,
        TrafficReport report,
        TrafficView view = TrafficView.RowsBetweenRanks,
        int width = 800,
        int height = 600
    )
    {
        (Plot plot, _) = Build(report, view);
        OutputPaths.ReplaceWhole(path, temporary => plot.SavePng(temporary, width, height));
    }

    /// <summary>The plot and its heatmap (tests map cells to pixels with <see cref="CellCenter"/>).</summary>
    internal static (Plot Plot, ScottPlot.Plottables.Heatmap Heatmap) Build(TrafficReport report, TrafficView view)
    {
        ArgumentNullException.ThrowIfNull(report);
        (long[,] matrix, string title, string xLabel) = view switch
        {
            TrafficView.RowsBetweenRanks => (report.RowsBetweenRanks(), "rows sent", "destination rank"),
            TrafficView.BytesBetweenRanks => (report.BytesBetweenRanks(), "bytes sent", "destination rank"),
            TrafficView.RowsBySourceAndExpert => (BySourceAndExpert(report), "rows sent", "expert"),
            _ => throw new ArgumentOutOfRangeException(nameof(view), view, "unknown view"),
        };
        int rows = matrix.GetLength(0),
            columns = matrix.GetLength(1);
        var intensities = new double[rows, columns];
        long max = 0;
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < columns; c++)
            {
                intensities[r, c] = matrix[r, c];
                max = Math.Max(max, matrix[r, c]);
            }
        }
        var plot = new Plot();
        var heatmap = plot.Add.Heatmap(intensities);
        heatmap.Colormap = new ScottPlot.Colormaps.Viridis();
        heatmap.ManualRange = new ScottPlot.Range(0, Math.Max(max, 1));
        // Cell (r, c) is centred on x = c, y = rows - 1 - r: row 0 (source rank 0) on top, as the matrix reads.
        heatmap.Rectangle = new CoordinateRect(-0.5, columns - 0.5, -0.5, rows - 0.5);
        plot.Add.ColorBar(heatmap);
        plot.Axes.Left.TickGenerator = IndexTicks(rows, r => rows - 1 - r);
        plot.Axes.Bottom.TickGenerator = IndexTicks(columns, c => c);
        plot.Axes.SetLimits(-0.5, columns - 0.5, -0.5, rows - 0.5);
        plot.Title($"{title} (max {max.ToString(CultureInfo.InvariantCulture)})");
        plot.XLabel(xLabel);
        plot.YLabel("source rank");
        return (plot, heatmap);
    }

    /// <summary>One labelled tick per index (every n-th when there are more than 16), at its cell's centre.</summary>
    private static ScottPlot.TickGenerators.NumericManual IndexTicks(int count, Func<int, double> position)
    {
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        int step = Math.Max(1, (count + 15) / 16);
        for (int i = 0; i < count; i += step)
            ticks.AddMajor(position(i), i.ToString(CultureInfo.InvariantCulture));
        return ticks;
    }

    /// <summary>Plot coordinates of the centre of cell (<paramref name="row"/>, <paramref name="column"/>).</summary>
    internal static Coordinates CellCenter(int rows, int row, int column) => new(column, rows - 1 - row);

    private static long[,] BySourceAndExpert(TrafficReport report)
    {
        var matrix = new long[report.WorldSize, report.NumExperts];
        for (int s = 0; s < report.WorldSize; s++)
        {
            for (int e = 0; e < report.NumExperts; e++)
                matrix[s, e] = report.RowCounts[s * report.NumExperts + e];
        }
        return matrix;
    }
}
