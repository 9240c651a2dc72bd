using System.Globalization;
using MoeSharp.Cli.Benchmarks;
using MoeSharp.Cli.Commands;
using MoeSharp.Collectives;
using MoeSharp.Dispatch;
using MoeSharp.Layer;
using MoeSharp.Tensors;
using MoeSharp.Verification;
using Spectre.Console;

namespace MoeSharp.Cli.Faults;

/// <summary>
/// Each command's memory estimate, checked at validation before any rank starts or anything is allocated: one line
/// such as <c>needs 41.2 GB of host memory per process, 22.8 GB available (--tokens 1000000 --dim 1024)</c>, exit 2.
/// In-process ranks share the process, so their estimates add up; an MPI process holds one rank.
/// </summary>
internal static class CommandMemory
{
    /// <summary>The in-process world limit, naming the option.</summary>
    public static ValidationResult InProcessRanks(int? world, string? comm, string option = "--world")
    {
        if (world is int w && w > InProcessWorld.MaxRanks && comm is null or "inproc")
        {
            return ValidationResult.Error(
                $"{option} {w} exceeds the {InProcessWorld.MaxRanks} in-process ranks this tool runs "
                    + "(one thread each); run more ranks with --comm mpi"
            );
        }
        return ValidationResult.Success();
    }

    /// <summary>
    /// <c>moe run</c>: every rank's dispatch round (in capacity mode with its slots), the group inputs and the
    /// single-rank reference.
    /// </summary>
    public static ValidationResult Run(RunCase c, bool inProcess, ComputeOptions compute)
    {
        var config = new TokenDispatcherConfig(Math.Max(1, c.Experts), Math.Max(1, c.TopK))
        {
            Layout = c.Layout,
            ExpertAlignment = c.Align,
            WireFormat = c.Wire,
            Capacity = c.Capacity,
        };
        string options = Describe(
            ("--world", c.World),
            ("--sp", c.Sp),
            ("--tokens", c.Tokens),
            ("--dim", c.Dim),
            ("--experts", c.Experts),
            ("--align", c.Align)
        );
        options += CapacityOption(c.Capacity);
        long perRank = DispatchMemoryEstimate.BytesPerRank(config, c.World, c.Sp, c.Tokens, c.Dim, c.RowType);
        long reference = DispatchMemoryEstimate.BytesPerRank(
            config with
            {
                ExpertAlignment = 1,
            },
            1,
            1,
            c.Tokens,
            c.Dim,
            c.RowType
        );
        long bytesPerToken = (long)c.Dim * c.RowType.SizeOf() + 8L * c.TopK;
        long inputs = MemoryBudget.Multiply(MemoryBudget.Multiply(c.Tokens, bytesPerToken), c.World / c.Sp);
        long largest = DispatchMemoryEstimate.LargestTensorElements(config, c.World, c.Sp, c.Tokens, c.Dim);
        return Check(inProcess ? c.World : 1, perRank, Add(inputs, reference), largest, compute, options);
    }

    /// <summary>
    /// <c>moe bench</c>: every rank's dispatch round on its own tokens, once per dispatcher the rank holds at the same
    /// time (<paramref name="dispatchers"/>; the wire benchmark's native and FP8 pair is two); with
    /// <paramref name="capacity"/>, the normal dispatcher and the capacity-mode one with its slots.
    /// </summary>
    public static ValidationResult Bench(
        BenchShape shape,
        int world,
        bool inProcess,
        ComputeOptions compute,
        int dispatchers = 1,
        DispatchCapacity? capacity = null
    )
    {
        var config = new TokenDispatcherConfig(Math.Max(1, shape.Experts), Math.Max(1, shape.TopK));
        string options =
            Describe(("--world", world), ("--tokens", shape.Tokens), ("--dim", shape.Dim), ("--experts", shape.Experts))
            + CapacityOption(capacity);
        long perRank = MemoryBudget.Multiply(
            DispatchMemoryEstimate.BytesPerRank(config, world, 1, shape.Tokens, shape.Dim, shape.RowType),
            dispatchers
        );
        long largest = DispatchMemoryEstimate.LargestTensorElements(config, world, 1, shape.Tokens, shape.Dim);
        if (capacity is not null)
        {
            var slots = config with { Capacity = capacity };
            perRank = Add(
                perRank,
                DispatchMemoryEstimate.BytesPerRank(slots, world, 1, shape.Tokens, shape.Dim, shape.RowType)
            );
            largest = Math.Max(
                largest,
                DispatchMemoryEstimate.LargestTensorElements(slots, world, 1, shape.Tokens, shape.Dim)
            );
        }
        return Check(inProcess ? world : 1, perRank, 0, largest, compute, options);
    }

    /// <summary>
    /// <c>moe bench --uneven</c> at its largest point: T = base + SP − 1 tokens of the smallest swept SP size, whose
    /// replicated variant routes the most rows. Per rank: the group's inputs with the sharded variants' shards and the
    /// reference's output bytes, and one dispatch round (the four variants share one pool and run in turn).
    /// </summary>
    public static ValidationResult Uneven(UnevenBenchOptions o, bool inProcess, ComputeOptions compute)
    {
        int sp = o.SpSizes[0];
        long tokens = (long)o.BaseTokens + o.SpSizes[^1] - 1;
        var config = new TokenDispatcherConfig(Math.Max(1, o.Experts), Math.Max(1, o.TopK))
        {
            Layout = SequenceLayout.Replicated,
        };
        string options = Describe(
            ("--world", o.World),
            ("--tokens", o.BaseTokens),
            ("--dim", o.Dim),
            ("--experts", o.Experts)
        );
        long rowBytes = (long)o.Dim * o.RowType.SizeOf();
        long inputs = MemoryBudget.Multiply(tokens, rowBytes + 8L * o.TopK);
        long perRank = DispatchMemoryEstimate.BytesPerRank(config, o.World, sp, tokens, o.Dim, o.RowType);
        perRank = Add(perRank, MemoryBudget.Multiply(inputs, 2));
        perRank = Add(perRank, MemoryBudget.Multiply(tokens, rowBytes));
        long largest = DispatchMemoryEstimate.LargestTensorElements(config, o.World, sp, tokens, o.Dim);
        return Check(inProcess ? o.World : 1, perRank, 0, largest, compute, options);
    }

    /// <summary>
    /// <c>moe bench-cpu --what exchange</c> at its largest world: every rank's send and receive buffers of
    /// <paramref name="mib"/> MiB each (the copy that follows holds as much, after they are freed).
    /// </summary>
    public static ValidationResult Exchange(int largestWorld, int mib)
    {
        long bytes = MemoryBudget.Multiply(MemoryBudget.Multiply(2L * largestWorld, mib), 1L << 20);
        return Check(1, 0, bytes, 0, ComputeOptions.Host, Describe(("--world", largestWorld), ("--mib", mib)));
    }

    /// <summary>
    /// <c>moe train</c>: per rank, the layer's rows in the forward and backward (routed rows of width D and 2H), its
    /// experts' weights, their gradients and AdamW's two moments; and on the host of every rank, whatever the device,
    /// the global batch (generated whole on every step), the initial weights of its own experts (every rank draws all
    /// E experts' values from the seed but stores only its slice), and with <c>--load</c> or <c>--save</c> its own
    /// experts' weights and moments read from the checkpoint or copied out for saving, and a save's gather blocks.
    /// </summary>
    public static ValidationResult Train(TrainShape t, bool inProcess, ComputeOptions compute)
    {
        string options = Describe(
            ("--world", t.World),
            ("--sp", t.Sp),
            ("--tokens", t.Tokens),
            ("--dim", t.Dim),
            ("--hidden", t.Hidden),
            ("--experts", t.Experts)
        );
        if (t.Load is not null)
            options += " --load " + t.Load;
        if (t.Save is not null)
            options += " --save " + t.Save;
        int world = Math.Max(1, t.World),
            sp = Math.Max(1, t.Sp);
        long groups = Math.Max(1, world / sp);
        long groupTokens = (t.Tokens + groups - 1) / groups;
        long entries = MemoryBudget.Multiply((groupTokens + sp - 1) / sp, t.TopK);
        long rowWidth = 6L * t.Dim + 6L * t.Hidden;
        long rows = Add(MemoryBudget.Multiply(entries, rowWidth), MemoryBudget.Multiply(groupTokens, 8L * t.Dim));
        long perRank = MemoryBudget.Multiply(rows, 4);
        // The layer's weights, gradients and AdamW moments: the library's own estimate (the layer checks it too).
        var layer = new MoeLayerArgs(t.Dim, t.Hidden, t.Experts, t.TopK) { SharedHidden = t.SharedHidden };
        int localExperts = Math.Max(1, t.Experts / world);
        perRank = Add(perRank, MoeLayerMemoryEstimate.TrainingBytesPerRank(layer, localExperts));
        // On the host of every rank: the batch and the per-token losses, and its own experts' initial weights (with
        // the whole gate and shared expert); a checkpoint adds its own experts' weights and two moments (read at the
        // start, or copied out at the end) and a save the blocks it gathers the experts in.
        long initialWeights = MoeLayerMemoryEstimate.ParameterBytesPerRank(layer, localExperts);
        long hostPerRank = Add(MemoryBudget.Multiply(t.Tokens, 4L * (t.Dim + 2)), initialWeights);
        if (t.Load is not null || t.Save is not null)
            hostPerRank = Add(hostPerRank, MemoryBudget.Multiply(initialWeights, 3));
        if (t.Save is not null)
            hostPerRank = Add(hostPerRank, 2L * MoeLayerCheckpoint.SaveBlockBytes);
        long ranks = inProcess ? world : 1;
        long largest = Math.Max(
            MemoryBudget.Multiply(t.Tokens, t.Dim),
            MemoryBudget.Multiply(entries, 2L * Math.Max(t.Dim, t.Hidden))
        );
        // The initial weights' stacked [E_local, H, D] (a checkpoint is read and written in slices and blocks).
        largest = Math.Max(largest, MoeLayerMemoryEstimate.LargestTensorElements(layer, localExperts));
        return Check((int)ranks, perRank, MemoryBudget.Multiply(hostPerRank, ranks), largest, compute, options);
    }

    /// <summary>
    /// <c>moe bench --layer</c>: one rank's layer step, run twice (timed, then profiled), each pass with a layer and an
    /// optimizer of its own. The rank holds the layer's weights, gradients and AdamW's two moments, the forward's rows
    /// and the backward's as many, and on a device its copies of the input batches and the output gradient and, with
    /// bfloat16 products, its experts' bfloat16 weight copies (the timed pass hands its layer, moments and copies back
    /// before the profiled pass rents its own). The host holds besides the random weights both layers load and the
    /// input batches and output gradient.
    /// </summary>
    public static ValidationResult LayerBench(
        LayerBenchmark.Shape shape,
        string? preset,
        bool bfloat16Products,
        ComputeOptions compute
    )
    {
        var args = new MoeLayerArgs(shape.Dim, shape.Hidden, shape.Experts, shape.TopK);
        long weights = MoeLayerMemoryEstimate.ParameterBytesPerRank(args, shape.Experts);
        long perRank = LayerBenchRankBytes(shape, bfloat16Products, compute.Device);
        long largest = LayerWorldMemory.LargestTensorElements(args, LayerLayout.Single, shape.Tokens);
        return Check(
            1,
            perRank,
            Add(weights, LayerBenchBatchBytes(shape)),
            largest,
            compute,
            LayerOptions(shape, preset)
        );
    }

    /// <summary>
    /// The bytes of <c>bench --layer</c>'s rank on <paramref name="device"/> (see <see cref="LayerBench"/>): the
    /// layer's training state and two passes' rows, on a device also the input batches and any bfloat16 weight
    /// copies, and on CUDA the dense cuBLAS reference's operands, rented after the step from the pool that still holds
    /// the step's buffers.
    /// </summary>
    internal static long LayerBenchRankBytes(LayerBenchmark.Shape shape, bool bfloat16Products, DeviceKind device)
    {
        var args = new MoeLayerArgs(shape.Dim, shape.Hidden, shape.Experts, shape.TopK);
        long rows = LayerWorldMemory.ForwardRowBytesPerRank(args, LayerLayout.Single, shape.Tokens);
        long perRank = Add(
            MoeLayerMemoryEstimate.TrainingBytesPerRank(args, shape.Experts),
            MemoryBudget.Multiply(rows, 2)
        );
        if (device == DeviceKind.Host)
            return perRank;
        // The experts' bfloat16 weight copies: half their float32 bytes (the gate's half too, a rounding up).
        long copies = bfloat16Products ? MoeLayerMemoryEstimate.ParameterBytesPerRank(args, shape.Experts) / 2 : 0;
        perRank = Add(Add(perRank, copies), LayerBenchBatchBytes(shape));
        if (device != DeviceKind.Cuda)
            return perRank;
        // A [T·K, D] and B [H, D] in bfloat16, C [T·K, H] in float32.
        long operands = Add(MemoryBudget.Multiply(shape.Rows, shape.Dim), (long)shape.Hidden * shape.Dim);
        long dense = Add(
            MemoryBudget.Multiply(operands, 2),
            MemoryBudget.Multiply(MemoryBudget.Multiply(shape.Rows, shape.Hidden), sizeof(float))
        );
        return Add(perRank, dense);
    }

    /// <summary><c>bench --layer</c>'s input batches and output gradient, [T, D] float32 each.</summary>
    private static long LayerBenchBatchBytes(LayerBenchmark.Shape shape) =>
        MemoryBudget.Multiply(
            MemoryBudget.Multiply((long)shape.Tokens * shape.Dim, sizeof(float)),
            LayerBenchmark.InputSets + 1
        );

    /// <summary>
    /// <c>moe bench --layer --wire fp8</c>, on the host: the random weights and the two layers loaded from them (native
    /// and FP8 wire, forward only, so no gradients or moments), each holding its last forward's rows, and the batch:
    /// the input, its bfloat16 rounding and both outputs.
    /// </summary>
    public static ValidationResult LayerWireError(LayerBenchmark.Shape shape, string? preset)
    {
        var args = new MoeLayerArgs(shape.Dim, shape.Hidden, shape.Experts, shape.TopK);
        long weights = MoeLayerMemoryEstimate.ParameterBytesPerRank(args, shape.Experts);
        long rows = LayerWorldMemory.ForwardRowBytesPerRank(args, LayerLayout.Single, shape.Tokens);
        long batch = MemoryBudget.Multiply((long)shape.Tokens * shape.Dim, 4 * sizeof(float) + sizeof(ushort));
        long bytes = Add(Add(MemoryBudget.Multiply(weights, 3), MemoryBudget.Multiply(rows, 2)), batch);
        long largest = LayerWorldMemory.LargestTensorElements(args, LayerLayout.Single, shape.Tokens);
        return Check(1, 0, bytes, largest, ComputeOptions.Host, LayerOptions(shape, preset));
    }

    private static ValidationResult Check(
        int ranksInProcess,
        long perRank,
        long shared,
        long largestTensor,
        ComputeOptions compute,
        string options
    )
    {
        if (largestTensor > MemoryBudget.MaxTensorElements)
        {
            return ValidationResult.Error(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"needs a tensor of {largestTensor} elements, more than the {MemoryBudget.MaxTensorElements} one tensor can index ({options})"
                )
            );
        }
        // On CUDA the rows live in device memory (checked against GPU 0's free memory when a GPU answers); ILGPU's CPU
        // accelerator allocates host memory.
        if (compute.Device == DeviceKind.Cuda && DeviceMemory.Query() is GpuMemory gpu)
        {
            ValidationResult device = DeviceMemory.Decide(
                perRank,
                ranksInProcess,
                compute.Gpus > 0 ? compute.Gpus : gpu.Gpus,
                gpu.FreeBytes,
                options
            );
            if (!device.Successful)
                return device;
        }
        long host =
            compute.Device == DeviceKind.Cuda ? shared : Add(MemoryBudget.Multiply(perRank, ranksInProcess), shared);
        long available = MemoryBudget.AvailableHostBytes();
        if (host > available)
        {
            return ValidationResult.Error(
                $"needs {MemoryBudget.FormatBytes(host)} of host memory per process, "
                    + $"{MemoryBudget.FormatBytes(available)} available ({options})"
            );
        }
        return ValidationResult.Success();
    }

    /// <summary>The capacity option for a message (with its leading space), or nothing.</summary>
    private static string CapacityOption(DispatchCapacity? capacity) =>
        capacity switch
        {
            null => "",
            { CapacityFactor: double f } => string.Create(CultureInfo.InvariantCulture, $" --capacity-factor {f}"),
            _ => string.Create(CultureInfo.InvariantCulture, $" --capacity-rows {capacity.FixedRowsPerRank}"),
        };

    /// <summary>The layer benchmark's shape for a message, with the preset it came from.</summary>
    private static string LayerOptions(LayerBenchmark.Shape shape, string? preset)
    {
        string options = Describe(
            ("--tokens", shape.Tokens),
            ("--dim", shape.Dim),
            ("--hidden", shape.Hidden),
            ("--experts", shape.Experts),
            ("--top-k", shape.TopK)
        );
        return preset is null ? "--layer " + options : $"--layer --preset {preset}: {options}";
    }

    private static string Describe(params (string Option, long Value)[] options) =>
        string.Join(' ', options.Select(o => string.Create(CultureInfo.InvariantCulture, $"{o.Option} {o.Value}")));

    private static long Add(long a, long b) => a > long.MaxValue - b ? long.MaxValue : a + b;
}
