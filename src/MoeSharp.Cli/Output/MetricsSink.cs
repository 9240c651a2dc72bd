namespace MoeSharp.Cli.Output;

/// <summary>
/// Where <c>--metrics FILE</c> (and <c>bench --json</c>, on stdout) records go: one JSON object per line, flushed
/// as written so a long run can be followed with <c>tail -f</c> and a killed run keeps its lines. The file is
/// created on the first record, so under MPI only rank 0 (the rank that reports) creates it.
/// </summary>
internal sealed class MetricsSink : IDisposable
{
    private readonly string? _path;
    private readonly bool _toStdout;
    private readonly Lock _gate = new();
    private StreamWriter? _file;

    private MetricsSink(string? path, bool toStdout)
    {
        _path = path;
        _toStdout = toStdout;
    }

    /// <summary>
    /// A sink writing to <paramref name="path"/> (when given) and to stdout (when <paramref name="toStdout"/>); null
    /// when neither.
    /// </summary>
    public static MetricsSink? Open(string? path, bool toStdout = false) =>
        path is null && !toStdout ? null : new MetricsSink(path, toStdout);

    /// <summary>Appends one line. Safe to call from any thread.</summary>
    public void Write(MetricsRecord record)
    {
        string line = record.ToJson();
        lock (_gate)
        {
            if (_path is not null)
            {
                _file ??= new StreamWriter(_path, append: false) { AutoFlush = true };
                _file.WriteLine(line);
            }
            if (_toStdout)
                Console.Out.WriteLine(line);
        }
    }

    /// <summary>Closes the file.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _file?.Dispose();
            _file = null;
        }
    }
}
