using MoeSharp.Cli.Output;
using static MoeSharp.Tests.Cli.CliInvoker;

namespace MoeSharp.Tests.Cli;

/// <summary>
/// A <c>--metrics</c> file that stops taking writes (a full disk) keeps only whole lines, and one the run created that
/// holds none is removed: a reader of the JSON lines never meets half a record.
/// </summary>
public sealed class MetricsSinkFailureTests : IDisposable
{
    private readonly string _dir = TempDirectory();

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static MetricsRecord Step(int step) => MetricsRecord.Create("train", "step").With("step", step);

    [Fact]
    public void A_line_the_file_cannot_take_is_cut_off_and_the_lines_before_it_stay()
    {
        string path = Path.Combine(_dir, "m.jsonl");
        using (var sink = MetricsSink.OpenOver(path, p => new FullAfter(File.Create(p), allowedBytes: 300)))
        {
            sink.Write(Step(1));
            sink.Write(Step(2));
            Assert.Throws<IOException>(() =>
            {
                for (int step = 3; step < 100; step++)
                    sink.Write(Step(step));
            });
        }
        string[] lines = File.ReadAllLines(path);
        Assert.InRange(lines.Length, 2, 99);
        Assert.Equal(lines.Select((_, i) => Step(i + 1).ToJson()), lines);
        Assert.EndsWith(Environment.NewLine, File.ReadAllText(path));
    }

    [Fact]
    public void A_file_created_for_the_run_that_cannot_take_its_first_line_is_removed()
    {
        string path = Path.Combine(_dir, "m.jsonl");
        using (var sink = MetricsSink.OpenOver(path, p => new FullAfter(File.Create(p), allowedBytes: 10)))
            Assert.Throws<IOException>(() => sink.Write(Step(1)));
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void A_file_that_was_there_before_is_kept_even_when_its_first_line_fails()
    {
        string path = Path.Combine(_dir, "m.jsonl");
        File.WriteAllText(path, "earlier run\n");
        using (var sink = MetricsSink.OpenOver(path, p => new FullAfter(File.Create(p), allowedBytes: 10)))
            Assert.Throws<IOException>(() => sink.Write(Step(1)));
        Assert.True(File.Exists(path));
        Assert.Equal(0, new FileInfo(path).Length);
    }

    /// <summary>A file that takes <c>allowedBytes</c> in all, writing what fits of a larger write before it fails, as
    /// a file system out of space does.</summary>
    private sealed class FullAfter(FileStream inner, long allowedBytes) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => true;
        public override bool CanWrite => true;
        public override long Length => inner.Length;

        public override long Position
        {
            get => inner.Position;
            set => inner.Position = value;
        }

        public override void Write(byte[] buffer, int offset, int count)
        {
            long room = Math.Max(0, allowedBytes - inner.Position);
            inner.Write(buffer, offset, (int)Math.Min(room, count));
            if (count > room)
                throw new IOException("No space left on device");
        }

        public override void Flush() => inner.Flush();

        public override void SetLength(long value) => inner.SetLength(value);

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
