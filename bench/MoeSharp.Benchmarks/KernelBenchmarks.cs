using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using MoeSharp.Compute;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Benchmarks;

/// <summary>
/// The host kernels behind dispatch and combine at N = 131072 (token, expert) entries (T = N/K = 16384 tokens,
/// K = 8, E = 64) and D = 2048, against a parallel memory copy of the routed rows' bytes.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(BandwidthConfig))]
public class KernelBenchmarks : IWorkPerOperation
{
    private const int N = 131072;
    private const int K = 8;
    private const int Tokens = N / K;
    private const int D = 2048;
    private const int Experts = 64;

    private readonly HostMoeKernels _kernels = new();
    private int[] _counts = [];
    private Tensor _scores = null!;
    private Tensor _ids64 = null!;
    private Tensor _entryScores = null!;
    private ShardEntries _shard = null!;
    private EntryColumns _columns = null!;
    private Tensor _x = null!,
        _ids = null!,
        _order = null!,
        _rowOf = null!,
        _scale = null!,
        _positions = null!;
    private Tensor _routed = null!,
        _combined = null!;
    private float[] _copySource = null!,
        _copyDestination = null!;

    /// <summary>Random routing of T tokens to K distinct experts each, sorted as dispatch sorts it.</summary>
    [GlobalSetup]
    public void Setup()
    {
        var (x, scores, ids64) = RandomInputs.Create(new Random(1), Tokens, D, Experts, K);
        _x = x;
        _scale = scores.Reshape(N);
        _scores = scores;
        _ids64 = ids64;
        _ids = Tensor.Uninitialized(DType.Int32, N);
        _entryScores = Tensor.Uninitialized(DType.Float32, N);
        _shard = new ShardEntries(scores, ids64, 0, Tokens, 0, Experts);
        _columns = new EntryColumns(_ids, _entryScores);
        _counts = _kernels.Entries.PrepareEntries(_shard, _columns).Counts;

        _order = Tensor.Uninitialized(DType.Int32, N);
        _kernels.Entries.StableSortByExpert(_ids, _counts, _order);
        ReadOnlySpan<int> order = _order.AsSpan<int>();

        // Sorted row i holds entry order[i], i.e. token order[i] / K: the gather's source row.
        _rowOf = Tensor.Uninitialized(DType.Int32, N);
        Span<int> rowOf = _rowOf.AsSpan<int>();
        for (int i = 0; i < N; i++)
            rowOf[i] = order[i] / K;

        // Each token's K sorted positions in ascending order (ascending expert id): the combine's input.
        _positions = Tensor.Uninitialized(DType.Int32, Tokens, K);
        Span<int> positions = _positions.AsSpan<int>();
        for (int i = 0; i < N; i++)
            positions[order[i]] = i;
        for (int t = 0; t < Tokens; t++)
            positions.Slice(t * K, K).Sort();

        _routed = Tensor.Uninitialized(DType.Float32, N, D);
        _kernels.Rows.GatherRows(_x, 0, _rowOf, null, _routed);
        _combined = Tensor.Uninitialized(DType.Float32, Tokens, D);

        _copySource = GC.AllocateUninitializedArray<float>(N * D);
        _routed.AsSpan<float>().CopyTo(_copySource);
        _copyDestination = GC.AllocateUninitializedArray<float>(N * D);
        _copyDestination.AsSpan().Clear();
    }

    /// <summary>Baseline: Span.CopyTo of N·D floats (the routed rows' bytes) in parallel chunks on all cores.</summary>
    [Benchmark(Baseline = true)]
    public void MemoryCopy()
    {
        float[] source = _copySource,
            destination = _copyDestination;
        int chunks = Environment.ProcessorCount * 4;
        Parallel.For(
            0,
            chunks,
            c =>
            {
                int begin = (int)((long)source.Length * c / chunks),
                    end = (int)((long)source.Length * (c + 1) / chunks);
                source.AsSpan(begin, end - begin).CopyTo(destination.AsSpan(begin, end - begin));
            }
        );
    }

    /// <summary>Dispatch's gather: N rows of x into the expert-sorted layout.</summary>
    [Benchmark]
    public void GatherRows() => _kernels.Rows.GatherRows(_x, 0, _rowOf, null, _routed);

    /// <summary>Dispatch's gather with the routing score multiplied in (ScoreBeforeExperts).</summary>
    [Benchmark]
    public void GatherRowsScaled() => _kernels.Rows.GatherRows(_x, 0, _rowOf, _scale, _routed);

    /// <summary>Combine: each token's K = 8 scaled rows added in ascending expert id.</summary>
    [Benchmark]
    public void GatherReduce() =>
        _kernels.Rows.GatherReduce(new TokenGather(_routed, _positions, _scale, null), _combined, 0);

    /// <summary>Stable counting sort of the N expert ids.</summary>
    [Benchmark]
    public void StableSortByExpert() => _kernels.Entries.StableSortByExpert(_ids, _counts, _order);

    /// <summary>Reading, validating and counting the N (id, score) entries: the histogram step of dispatch.</summary>
    [Benchmark]
    public void PrepareEntries() => _kernels.Entries.PrepareEntries(_shard, _columns);

    /// <summary>
    /// Compulsory traffic: distinct bytes read plus bytes written (a gather's reread source rows are not counted).
    /// </summary>
    public double WorkPerOperation(BenchmarkCase benchmarkCase)
    {
        const double row = D * sizeof(float);
        return benchmarkCase.Method() switch
        {
            nameof(MemoryCopy) => 2.0 * N * row, // read + write N rows
            nameof(GatherRows) => (double)Tokens * row + N * row + N * 4.0, // x once, N rows written, + row map
            nameof(GatherRowsScaled) => (double)Tokens * row + N * row + N * 8.0, // + scales and row map
            // N rows in, T rows out, + scales and positions
            nameof(GatherReduce) => (double)N * row + Tokens * row + N * 8.0,
            nameof(StableSortByExpert) => N * 3.0 * sizeof(int), // ids read twice, order written
            // ids and scores read, ids and scores written
            nameof(PrepareEntries) => N * (double)(sizeof(long) + 3 * sizeof(float)),
            _ => double.NaN,
        };
    }
}
