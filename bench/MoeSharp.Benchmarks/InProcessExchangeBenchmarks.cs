using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using MoeSharp.Collectives;
using MoeSharp.Tensors;

namespace MoeSharp.Benchmarks;

/// <summary>
/// <see cref="IProcessGroup.AllToAllV{T}"/> of rows among in-process ranks, 16 MiB sent per rank (an equal
/// share to every rank, itself included). Each invocation runs the world once with
/// <see cref="Iterations"/> exchanges inside, so the rank threads' start and join are paid once per
/// invocation; the reported time is per exchange.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(BandwidthConfig))]
public class InProcessExchangeBenchmarks : IWorkPerOperation
{
    /// <summary>Exchanges per invocation.</summary>
    public const int Iterations = 16;

    private const int BytesPerRank = 16 << 20;
    private const int FloatsPerRank = BytesPerRank / sizeof(float);
    private const int Dim = 2048;

    private float[][] _send = null!,
        _receive = null!;
    private int[] _counts = null!;

    /// <summary>Ranks of the world.</summary>
    [Params(2, 4)]
    public int Ranks { get; set; }

    /// <summary>Each rank's send and receive buffers, and equal counts (whole rows of <c>D = 2048</c>).</summary>
    [GlobalSetup]
    public void Setup()
    {
        int rowsPerPeer = FloatsPerRank / Dim / Ranks;
        _counts = Enumerable.Repeat(rowsPerPeer * Dim, Ranks).ToArray();
        _send = new float[Ranks][];
        _receive = new float[Ranks][];
        for (int r = 0; r < Ranks; r++)
        {
            _send[r] = new float[FloatsPerRank];
            new Random(r).NextBytes(System.Runtime.InteropServices.MemoryMarshal.AsBytes(_send[r].AsSpan()));
            _receive[r] = new float[FloatsPerRank];
        }
    }

    /// <summary>One exchange (of <see cref="Iterations"/> in a world run).</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = Iterations)]
    public void AllToAllV()
    {
        InProcessWorld.Run(
            Ranks,
            group =>
            {
                float[] send = _send[group.Rank],
                    receive = _receive[group.Rank];
                group.Barrier();
                for (int i = 0; i < Iterations; i++)
                    group.AllToAllV<float>(send, _counts, receive, _counts);
            }
        );
    }

    /// <summary>
    /// The same exchange through the tensor collectives (<see cref="ITensorCollectives.AllToAllV"/>) on tensors over
    /// the same arrays: what the dispatcher calls, against the span call it replaced (the baseline).
    /// </summary>
    [Benchmark(OperationsPerInvoke = Iterations)]
    public void AllToAllVTensor()
    {
        InProcessWorld.Run(
            Ranks,
            group =>
            {
                Tensor send = Tensor.FromArray(_send[group.Rank], FloatsPerRank);
                Tensor receive = Tensor.FromArray(_receive[group.Rank], FloatsPerRank);
                group.Barrier();
                for (int i = 0; i < Iterations; i++)
                    group.AllToAllV(send, _counts, receive, _counts);
            }
        );
    }

    /// <summary>
    /// Over the whole world: every rank's 16 MiB read from its send buffer and written to a receive buffer.
    /// </summary>
    public double WorkPerOperation(BenchmarkCase benchmarkCase) =>
        2.0 * BytesPerRank * benchmarkCase.Param<int>(nameof(Ranks));
}
