using System.Diagnostics;
using MoeSharp.Compute;
using MoeSharp.Cuda;
using MoeSharp.Cuda.Cublas;
using MoeSharp.Dispatch;
using MoeSharp.Layer;
using MoeSharp.Tensors;
using MoeSharp.Training;

namespace MoeSharp.Cli.Benchmarks;

/// <summary>
/// One MoE layer step on one rank (<c>moe bench --layer</c>): forward, backward and the AdamW step of a
/// <see cref="MoeLayer"/> (softmax router, local dispatch, grouped SwiGLU experts, score after the experts, combine),
/// the shape of <c>bench/reference/torchtitan_moe_layer.py</c>. Two passes: a timed one (the device synchronized only
/// between forward, backward and optimizer) and a profiled one that charges every kernel to a phase, with the device
/// synchronized around each kernel.
/// </summary>
internal static class LayerBenchmark
{
    /// <summary>Input batches the steps rotate among (the memory estimate counts them).</summary>
    internal const int InputSets = 4;

    /// <summary>The layer's shape.</summary>
    public sealed record Shape(string Name, int Tokens, int Dim, int Hidden, int Experts, int TopK)
    {
        /// <summary>Routed rows <c>T·K</c>.</summary>
        public long Rows => (long)Tokens * TopK;

        /// <summary>FLOPs of one expert projection over every routed row: <c>2·T·K·D·H</c>.</summary>
        public double ProjectionFlops => 2.0 * Rows * Dim * Hidden;

        /// <summary>FLOPs of the nine expert products of a step (three forward, six backward).</summary>
        public double ProductFlops => 9 * ProjectionFlops;
    }

    /// <summary>
    /// Medians in seconds, the phases from the profiled pass (synchronized per kernel), the dense GEMM reference.
    /// </summary>
    public sealed record Result(
        Shape Shape,
        string Device,
        string Card,
        bool BFloat16Products,
        int Repeats,
        double Step,
        double StepMin,
        double Forward,
        double Backward,
        double Optimizer,
        IReadOnlyList<(string Stage, string Phase, double Seconds)> Phases,
        double? DenseProjectionSeconds,
        string GemmPath,
        double FreesPerStep
    )
    {
        /// <summary>Seconds in the nine expert products (profiled pass).</summary>
        public double ProductSeconds => Phases.Where(p => p.Phase == LayerPhases.Products).Sum(p => p.Seconds);
    }

    /// <summary>Runs the benchmark on <paramref name="backend"/> (null: the host kernels).</summary>
    public static Result Run(
        IlgpuBackend? backend,
        Shape shape,
        bool bfloat16Products,
        int warmup,
        int repeats,
        int seed
    )
    {
        var args = new MoeLayerArgs(shape.Dim, shape.Hidden, shape.Experts, shape.TopK);
        var weights = RandomWeights(args, seed);
        var random = new Random(seed + 1);
        // Inputs rotate among a few batches, so the routing (and every group's row count) changes from step to step as
        // in training: a backend must not be timed on shapes it has seen the step before.
        Tensor[] xHost =
        [
            .. Enumerable.Range(0, InputSets).Select(_ => RandomActivations(random, 1.0, shape.Tokens, shape.Dim)),
        ];
        Tensor gradHost = RandomActivations(random, 1.0 / shape.Tokens, shape.Tokens, shape.Dim);

        // Timed pass.
        var (layer, _, _) = CreateLayer(args, backend, bfloat16Products, profile: false);
        MoeLayerCheckpoint.Load(layer, weights);
        ILayerKernels kernels = layer.Kernels;
        Tensor[] xs = [.. xHost.Select(kernels.Dispatch.Device.ToDevice)];
        Tensor grad = kernels.Dispatch.Device.ToDevice(gradHost);
        var optimizer = new AdamW(layer.Parameters, 1e-4f, weightDecay: 0f, kernels: kernels);
        var forward = new List<double>();
        var backward = new List<double>();
        var step = new List<double>();
        var adam = new List<double>();
        long freedBefore = 0;
        for (int i = 0; i < warmup + repeats; i++)
        {
            if (i == warmup)
                freedBefore = backend?.Allocator.FreedOnReturn ?? 0;
            kernels.Dispatch.Device.Synchronize();
            long t0 = Stopwatch.GetTimestamp();
            Tensor y = layer.Forward(xs[i % InputSets]);
            kernels.Dispatch.Device.Synchronize();
            long t1 = Stopwatch.GetTimestamp();
            Tensor gradX = layer.Backward(grad).GradX;
            kernels.Dispatch.Device.Synchronize();
            long t2 = Stopwatch.GetTimestamp();
            optimizer.Step();
            kernels.Dispatch.Device.Synchronize();
            long t3 = Stopwatch.GetTimestamp();
            kernels.Allocator.Return(y);
            kernels.Allocator.Return(gradX);
            if (i < warmup)
                continue;
            forward.Add(Stopwatch.GetElapsedTime(t0, t1).TotalSeconds);
            backward.Add(Stopwatch.GetElapsedTime(t1, t2).TotalSeconds);
            adam.Add(Stopwatch.GetElapsedTime(t2, t3).TotalSeconds);
            step.Add(Stopwatch.GetElapsedTime(t0, t3).TotalSeconds);
        }
        double freesPerStep = ((backend?.Allocator.FreedOnReturn ?? 0) - freedBefore) / (double)repeats;
        ReleaseLayer(layer, optimizer, xs, grad);

        // Profiled pass: a second layer with the same weights whose kernels are timed one by one.
        var (profiled, dispatchProfile, layerProfile) = CreateLayer(args, backend, bfloat16Products, profile: true);
        MoeLayerCheckpoint.Load(profiled, weights);
        kernels = profiled.Kernels;
        xs = [.. xHost.Select(kernels.Dispatch.Device.ToDevice)];
        grad = kernels.Dispatch.Device.ToDevice(gradHost);
        optimizer = new AdamW(profiled.Parameters, 1e-4f, weightDecay: 0f, kernels: kernels);
        var phases = new Dictionary<(string, string), double>();
        int profiledSteps = Math.Min(repeats, 3);
        for (int i = 0; i < 1 + profiledSteps; i++)
        {
            bool counted = i > 0;
            Tensor x = xs[i % InputSets];
            Tensor y = Stage(counted, "forward", () => profiled.Forward(x));
            Tensor gradX = Stage(counted, "backward", () => profiled.Backward(grad).GradX);
            Stage(
                counted,
                "optimizer",
                () =>
                {
                    optimizer.Step();
                    return x;
                }
            );
            kernels.Allocator.Return(y);
            kernels.Allocator.Return(gradX);
        }
        ReleaseLayer(profiled, optimizer, xs, grad);

        double? dense = backend is { IsCuda: true } ? DenseProjection(backend, shape, warmup, repeats) : null;
        string card = backend?.Accelerator.Name ?? Environment.ProcessorCount + " host cores";
        string device =
            backend is null ? "host"
            : backend.IsCuda ? "cuda"
            : "ilgpu-cpu";
        return new Result(
            shape,
            device,
            card,
            bfloat16Products,
            repeats,
            Median(step),
            step.Min(),
            Median(forward),
            Median(backward),
            Median(adam),
            phases.Select(kv => (kv.Key.Item1, kv.Key.Item2, kv.Value / profiledSteps)).ToList(),
            dense,
            backend is { IsCuda: true } && bfloat16Products ? backend.LayerKernels(true).GemmPath.ToString()
                : backend is null ? "host"
                : "ilgpu",
            freesPerStep
        );

        T Stage<T>(bool counted, string stage, Func<T> body)
        {
            dispatchProfile!.Reset();
            layerProfile!.Reset();
            T result = body();
            kernels.Dispatch.Device.Synchronize();
            if (!counted)
                return result;
            foreach (var (kernel, (seconds, _)) in dispatchProfile.Totals.Concat(layerProfile.Totals))
            {
                var key = (stage, LayerPhases.Of(stage, kernel, layerProfile.Totals.ContainsKey(kernel)));
                phases[key] = phases.GetValueOrDefault(key) + seconds;
            }
            return result;
        }
    }

    /// <summary>
    /// The layer on one rank with a local dispatcher, on the host or the backend, optionally with profiling decorators.
    /// </summary>
    private static (MoeLayer Layer, ProfilingMoeKernels? Dispatch, ProfilingLayerKernels? Layers) CreateLayer(
        MoeLayerArgs args,
        IlgpuBackend? backend,
        bool bfloat16Products,
        bool profile
    )
    {
        IMoeKernels dispatch = backend is null ? new HostMoeKernels() : backend.Kernels;
        ILayerKernels layerKernels = backend is null
            ? new HostLayerKernels(dispatch)
            : backend.LayerKernels(bfloat16Products);
        ProfilingMoeKernels? dispatchProfile = profile ? new ProfilingMoeKernels(dispatch) : null;
        ProfilingLayerKernels? layerProfile = profile ? new ProfilingLayerKernels(layerKernels) : null;
        var config = new TokenDispatcherConfig(args.NumExperts, args.TopK);
        var layer = new MoeLayer(
            args,
            new LocalTokenDispatcher(config, dispatchProfile ?? dispatch),
            null,
            layerProfile ?? (backend is null ? null : layerKernels)
        );
        return (layer, dispatchProfile, layerProfile);
    }

    /// <summary>Hands the layer's device tensors back (the allocator keeps them warm for the next layer).</summary>
    private static void ReleaseLayer(MoeLayer layer, AdamW optimizer, Tensor[] xs, Tensor grad)
    {
        ILayerKernels kernels = layer.Kernels;
        kernels.Dispatch.Device.Synchronize();
        // The weights, gradients, working tensors and bfloat16 copies, then the moments: on a device the next pass
        // reuses these buffers instead of holding a second set.
        layer.Dispose();
        optimizer.Dispose();
        foreach (Tensor x in xs)
            kernels.Allocator.Return(x);
        kernels.Allocator.Return(grad);
    }

    /// <summary>
    /// One dense bfloat16 cuBLAS GEMM of an expert projection's FLOPs (<c>[T·K, D] · [H, D]ᵀ</c>, float32 out).
    /// </summary>
    private static double DenseProjection(IlgpuBackend backend, Shape shape, int warmup, int repeats)
    {
        int device = backend.Accelerator is ILGPU.Runtime.Cuda.CudaAccelerator cuda ? cuda.DeviceId : 0;
        using var gemm = new CublasGroupedGemm(
            device,
            stream: 0,
            useGroupedBatched: false,
            bindContext: () => backend.Accelerator.Bind()
        );
        int rows = checked((int)shape.Rows);
        var random = new Random(3);
        Tensor a = backend.Kernels.Device.ToDevice(RandomBFloat16(random, rows, shape.Dim));
        Tensor b = backend.Kernels.Device.ToDevice(RandomBFloat16(random, 1, shape.Hidden, shape.Dim));
        Tensor c = backend.Allocator.Rent(DType.Float32, rows, shape.Hidden);
        var times = new List<double>();
        for (int i = 0; i < warmup + repeats; i++)
        {
            backend.Kernels.Device.Synchronize();
            long start = Stopwatch.GetTimestamp();
            gemm.Run(a, b, c, [rows]);
            backend.Kernels.Device.Synchronize();
            if (i >= warmup)
                times.Add(Stopwatch.GetElapsedTime(start).TotalSeconds);
        }
        foreach (Tensor t in new[] { a, b, c })
            backend.Allocator.Return(t);
        return Median(times);
    }

    internal static List<KeyValuePair<string, Tensor>> RandomWeights(MoeLayerArgs a, int seed)
    {
        var random = new Random(seed);
        int e = a.NumExperts,
            d = a.Dim,
            h = a.Hidden;
        return
        [
            new(MoeLayerCheckpoint.GateWeight, RandomTensor(random, 1 / Math.Sqrt(d), e, d)),
            new(MoeLayerCheckpoint.ExpertsW1, RandomTensor(random, 1 / Math.Sqrt(d), e, h, d)),
            new(MoeLayerCheckpoint.ExpertsW2, RandomTensor(random, 1 / Math.Sqrt(h), e, d, h)),
            new(MoeLayerCheckpoint.ExpertsW3, RandomTensor(random, 1 / Math.Sqrt(d), e, h, d)),
        ];
    }

    /// <summary>
    /// Uniform values in <c>[-scale, scale)</c>: a random block repeated (the expert weights are up to 200 M values).
    /// </summary>
    private static Tensor RandomTensor(Random random, double scale, params int[] shape)
    {
        var t = Tensor.Uninitialized(DType.Float32, shape);
        Span<float> values = t.AsSpan<float>();
        var block = new float[Math.Min(values.Length, 1 << 20) | 1];
        for (int i = 0; i < block.Length; i++)
            block[i] = (float)((random.NextDouble() * 2 - 1) * scale);
        // An odd block length, so repeats do not line up with rows of power-of-two length.
        for (int i = 0; i < values.Length; i += block.Length)
            block.AsSpan(0, Math.Min(block.Length, values.Length - i)).CopyTo(values[i..]);
        return t;
    }

    /// <summary>
    /// Uniform values in <c>[-scale, scale)</c>, every one drawn (token rows must differ for the routing to be
    /// realistic).
    /// </summary>
    internal static Tensor RandomActivations(Random random, double scale, params int[] shape)
    {
        var t = Tensor.Uninitialized(DType.Float32, shape);
        foreach (ref float v in t.AsSpan<float>())
            v = (float)((random.NextDouble() * 2 - 1) * scale);
        return t;
    }

    private static Tensor RandomBFloat16(Random random, params int[] shape)
    {
        var t = Tensor.Uninitialized(DType.BFloat16, shape);
        Span<BFloat16> values = t.AsSpan<BFloat16>();
        var block = new BFloat16[Math.Min(values.Length, 1 << 20) | 1];
        for (int i = 0; i < block.Length; i++)
            block[i] = BFloat16.FromSingle((float)(random.NextDouble() * 2 - 1));
        for (int i = 0; i < values.Length; i += block.Length)
            block.AsSpan(0, Math.Min(block.Length, values.Length - i)).CopyTo(values[i..]);
        return t;
    }

    private static double Median(List<double> values) => DispatchBenchmark.Median(values);
}

/// <summary>Which phase of the layer step a timed kernel belongs to (<c>moe bench --layer</c>'s phase table).</summary>
internal static class LayerPhases
{
    /// <summary>The nine grouped expert products.</summary>
    public const string Products = "expert products";

    /// <summary>The padded experts' layout passes: rows padded (cast to bfloat16) and back, weights cast.</summary>
    public const string ExpertLayout = "expert padding and casts";

    /// <summary>
    /// The phase of <paramref name="kernel"/> in <paramref name="stage"/> (forward, backward, optimizer):
    /// grouped products, SwiGLU, the router's product, scores, top-k and counts, the dispatcher's ordered gather-reduce
    /// (combine; in the backward the rows of the dispatch backward), its other kernels (dispatch), AdamW, the rest.
    /// The token scatter into the padded experts' rows counts as dispatch, as the dispatcher's own scatter does.
    /// </summary>
    public static string Of(string stage, string kernel, bool layerKernel)
    {
        if (stage == "optimizer")
            return "optimizer";
        if (!layerKernel)
            return kernel is "GatherReduce" or "RowDots" ? "combine" : "dispatch";
        return kernel switch
        {
            "GroupedMatMulTransposeB"
            or "GroupedMatMul"
            or "GroupedMatMulTransposeA"
            or "BatchedMatMulTransposeB"
            or "BatchedMatMul"
            or "BatchedMatMulTransposeA" => Products,
            "Plan" or "PadRows" or "UnpadRows" or "StackWeights" => ExpertLayout,
            // The token scatter into the padded experts' rows: the dispatcher's ScatterTokenRows, written in bfloat16.
            "PlaceTokenRows" => "dispatch",
            "SwiGluForward" or "SwiGluBackward" => "SwiGLU",
            "MatMulTransposeB"
            or "MatMul"
            or "MatMulTransposeA"
            or "Score"
            or "ScoreBackward"
            or "TopK"
            or "ScoreTopK"
            or "TopScoresBackward"
            or "TopScoresScoreBackward"
            or "CountPerExpert" => "router",
            "AdamWStep" => "optimizer",
            _ => "other (" + kernel + ")",
        };
    }
}
