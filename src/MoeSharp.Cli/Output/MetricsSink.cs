using System.Text;

namespace MoeSharp.Cli.Output;

/// <summary>
/// Where <c>--metrics FILE</c> (and <c>bench --json</c>, on stdout) records go: one JSON object per line, flushed
/// as written so a long run can be followed with <c>tail -f</c> and a killed run keeps its lines. The file is
/// created on the first record, so under MPI only rank 0 (the rank that reports) creates it. A line the file cannot
/// take (a full disk) is cut off again before the error goes on, so the file holds only whole lines, and a file this
/// sink created that holds none is removed.
/// </summary>
internal sealed class MetricsSink : IDisposable
{
    private readonly string? _path;
    private readonly bool _toStdout;
    private readonly Func<string, Stream> _create;
    private readonly Lock _gate = new();
    private Stream? _file;
    private bool _created;
    private long _wholeLines;

    private MetricsSink(string? path, bool toStdout, Func<string, Stream> create)
    {
        _path = path;
        _toStdout = toStdout;
        _create = create;
    }

    /// <summary>
    /// A sink writing to <paramref name="path"/> (when given) and to stdout (when <paramref name="toStdout"/>); null
    /// when neither.
    /// </summary>
    public static MetricsSink? Open(string? path, bool toStdout = false) =>
        path is null && !toStdout ? null : new MetricsSink(path, toStdout, CreateFile);

    /// <summary><see cref="Open"/> over streams from <paramref name="create"/> (given the path): for tests.</summary>
    internal static MetricsSink OpenOver(string path, Func<string, Stream> create) => new(path, false, create);

    /// <summary>Appends one line. Safe to call from any thread.</summary>
    public void Write(MetricsRecord record)
    {
        string line = record.ToJson();
        lock (_gate)
        {
            if (_path is not null)
                WriteToFile(Encoding.UTF8.GetBytes(line + Environment.NewLine));
            if (_toStdout)
                Console.Out.WriteLine(line);
        }
    }

    private void WriteToFile(byte[] bytes)
    {
        if (_file is null)
        {
            _created = !File.Exists(_path);
            _file = _create(_path!);
        }
        try
        {
            _file.Write(bytes);
            _file.Flush();
            _wholeLines += bytes.Length;
        }
        catch (IOException)
        {
            CutToWholeLines();
            throw;
        }
    }

    /// <summary>
    /// Drops what a failed write left of its line (truncating needs no space), and a file this sink created that
    /// holds no whole line. Best effort: the write's own error is the one reported.
    /// </summary>
    private void CutToWholeLines()
    {
        try
        {
            _file!.SetLength(_wholeLines);
            _file.Position = _wholeLines;
        }
        catch (Exception e) when (e is IOException or NotSupportedException) { }
        if (_wholeLines > 0 || !_created)
            return;
        _file!.Dispose();
        _file = null;
        try
        {
            File.Delete(_path!);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
    }

    /// <summary>Created or truncated, unbuffered: each line reaches the file in one write and can be cut off
    /// again.</summary>
    private static FileStream CreateFile(string path) =>
        new(path, FileMode.Create, FileAccess.Write, FileShare.Read, bufferSize: 0);

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
