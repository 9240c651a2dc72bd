using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Running;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;
using MoeSharp.Verification;

namespace MoeSharp.Benchmarks;

/// <summary>
/// <see cref="LocalTokenDispatcher"/> (EP = 1): <see cref="TokenDispatcher.Dispatch"/> and
/// <see cref="TokenDispatcher.Combine"/> timed separately. Outputs go back to the dispatcher's allocator
/// (<see cref="TokenDispatcher.Allocator"/>) every iteration, as in a training loop, so steady-state iterations reuse
/// warm memory.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(BandwidthConfig))]
public class DispatchCombineBenchmarks : IWorkPerOperation
{
    private const int Experts = 64;
    private const int TopK = 8;

    private LocalTokenDispatcher _dispatcher = null!;
    private Tensor _x = null!,
        _scores = null!,
        _ids = null!;
    private DispatchResult _dispatched = null!;

    /// <summary>T: tokens.</summary>
    [Params(4096, 16384)]
    public int T { get; set; }

    /// <summary>D: hidden size.</summary>
    [Params(1024, 2048)]
    public int D { get; set; }

    /// <summary>Scores multiply the rows in dispatch (a scaled gather) rather than in combine.</summary>
    [Params(false, true)]
    public bool ScoreBeforeExperts { get; set; }

    /// <summary>Random inputs and one dispatch whose routed rows stand in for the experts' output in combine.</summary>
    [GlobalSetup]
    public void Setup()
    {
        (_x, _scores, _ids) = RandomInputs.Create(new Random(1), T, D, Experts, TopK);
        _dispatcher = new LocalTokenDispatcher(
            new TokenDispatcherConfig(Experts, TopK) { ScoreBeforeExperts = ScoreBeforeExperts }
        );
        // Identity experts: combine reads the routed rows as the experts' output (it does not write them).
        _dispatched = _dispatcher.Dispatch(_x, _scores, _ids);
    }

    /// <summary>Hands the setup dispatch back.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _dispatcher.Allocator.Return(_dispatched.RoutedTokens);
        _dispatcher.Release(_dispatched.Metadata);
    }

    /// <summary>Histogram, stable sort by expert, gather of T·K rows into the expert-major layout.</summary>
    [Benchmark]
    public Tensor Dispatch()
    {
        DispatchResult d = _dispatcher.Dispatch(_x, _scores, _ids);
        _dispatcher.Allocator.Return(d.RoutedTokens);
        _dispatcher.Release(d.Metadata);
        return d.RoutedTokens;
    }

    /// <summary>Ordered gather-reduce of each token's K rows (ascending expert id) into <c>[T, D]</c>.</summary>
    [Benchmark]
    public Tensor Combine()
    {
        Tensor output = _dispatcher.Combine(_dispatched.RoutedTokens, _dispatched.Metadata, _x);
        _dispatcher.Allocator.Return(output);
        return output;
    }

    /// <summary>Either way: the T·D token rows once and the T·K·D routed rows once, float32.</summary>
    public double WorkPerOperation(BenchmarkCase benchmarkCase)
    {
        long t = benchmarkCase.Param<int>(nameof(T)),
            d = benchmarkCase.Param<int>(nameof(D));
        return (t * d + t * TopK * d) * sizeof(float);
    }
}
