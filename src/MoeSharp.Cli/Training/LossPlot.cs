namespace MoeSharp.Cli.Training;

/// <summary>Writes a loss curve as a PNG with ScottPlot (SkiaSharp, headless).</summary>
internal static class LossPlot
{
    /// <summary>Plots loss against step to <paramref name="path"/> (800×500).</summary>
    public static void Save(string path, IReadOnlyList<double> losses, string title)
    {
        var plot = new ScottPlot.Plot();
        double[] steps = Enumerable.Range(1, losses.Count).Select(s => (double)s).ToArray();
        var line = plot.Add.Scatter(steps, losses.ToArray());
        line.MarkerSize = 0;
        plot.Title(title);
        plot.XLabel("step");
        plot.YLabel("MSE loss");
        plot.SavePng(path, 800, 500);
    }
}
