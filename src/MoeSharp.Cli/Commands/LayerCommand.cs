using System.Globalization;
using MoeSharp.Checkpoints;
using MoeSharp.Cli.Faults;
using MoeSharp.Dispatch;
using MoeSharp.Tensors;
using MoeSharp.Verification;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MoeSharp.Cli.Commands;

/// <summary>
/// <c>moe layer --checkpoint DIR --layer N</c>: loads the MoE block of decoder layer N from a Hugging Face checkpoint
/// (each rank reading only its own experts), runs it forward on <c>x</c> from <c>--input</c> (or random tokens),
/// writes <c>y</c> to <c>--output</c> and prints the routing load, the bytes read and the times.
/// Exit 2 for bad options, a dense layer, a missing or mis-shaped tensor, or a bad input file.
/// </summary>
internal sealed class LayerCommand : Command<LayerSettings>
{
    public override int Execute(CommandContext context, LayerSettings settings, CancellationToken cancellationToken)
    {
        string directory = settings.Checkpoint!;
        int layer = settings.Layer!.Value;
        HfMoeConfig config = HfMoeConfig.Read(directory);
        int d = config.HiddenSize;
        var layout = new LayerLayout(
            settings.World ?? 1,
            settings.Sp ?? 1,
            settings.Sharded ? SequenceLayout.Sharded : SequenceLayout.Replicated,
            SpShardingPolicy.PadToMultiple
        );
        ComputeOptions compute = ComputeOptions.Parse(settings.Device, settings.Gpus);
        // Before reading any input or weight: a dense layer, a world that does not divide E, a tensor the checkpoint
        // lacks (headers only).
        CheckpointLayerRunner.CheckCheckpoint(directory, config, layer, layout);
        Tensor? input = settings.Input is { } path ? ReadInput(path, d) : null; // as large as its file
        int tokens = input?.Rows ?? settings.Tokens ?? 16;
        EnsureFits(config, layout, tokens, compute);
        Tensor x = input ?? RandomTokens(tokens, d, settings.Seed ?? 0);
        TimeSpan? timeout = OptionLimits.ToTimeSpan(settings.TimeoutSeconds);

        CheckpointLayerRunner.Result result = CheckpointLayerRunner.Run(
            directory,
            config,
            layer,
            x,
            layout,
            compute,
            timeout
        );
        if (settings.Output is { } output)
            SafetensorsFile.Write(output, [new("y", result.Y)]);

        var a = config.Args;
        AnsiConsole.MarkupLine(
            Markup.Escape(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"{config.Family} layer {layer}: D {a.Dim}, E {a.NumExperts}, K {a.TopK}, H {a.Hidden}, shared {a.SharedHidden}; "
                        + $"T {x.Rows}; {layout}; {compute.DeviceName}"
                )
            )
        );
        AnsiConsole.MarkupLine(
            Markup.Escape(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"build {result.Build.TotalMilliseconds:F1} ms, load {result.Load.TotalMilliseconds:F1} ms, read {result.BytesRead:N0} bytes for {result.RankBytes:N0} bytes of the ranks' tensors; "
                        + $"forward {result.Forward.TotalMilliseconds:F2} ms"
                )
            )
        );
        var table = new Table().AddColumns("expert", "tokens", "share");
        long total = result.TokensPerExpert.Sum();
        for (int e = 0; e < result.TokensPerExpert.Length; e++)
        {
            long n = result.TokensPerExpert[e];
            table.AddRow(
                e.ToString(CultureInfo.InvariantCulture),
                n.ToString(CultureInfo.InvariantCulture),
                (total == 0 ? 0 : 100.0 * n / total).ToString("F1", CultureInfo.InvariantCulture) + " %"
            );
        }
        AnsiConsole.Write(table);
        double mean = (double)total / result.TokensPerExpert.Length;
        AnsiConsole.MarkupLine(
            Markup.Escape(
                string.Create(
                    CultureInfo.InvariantCulture,
                    $"routing load: min {result.TokensPerExpert.Min()}, max {result.TokensPerExpert.Max()}, mean {mean:F2} tokens per expert "
                        + $"(max/mean {(mean == 0 ? 0 : result.TokensPerExpert.Max() / mean):F2})"
                )
            )
        );
        if (settings.Output is { } written)
            AnsiConsole.MarkupLine(Markup.Escape($"wrote y [{x.Rows}, {d}] to {written}"));
        return 0;
    }

    /// <summary>
    /// Tensor <c>x</c> of a safetensors file: float32 or bfloat16 (widened exactly) [T, D], every value finite.
    /// </summary>
    private static Tensor ReadInput(string path, int d)
    {
        if (!File.Exists(path))
            throw new FileNotFoundException($"--input '{path}' does not exist", path);
        SafetensorsContent file = SafetensorsFile.Read(path);
        if (!file.TryGet("x", out Tensor? x))
        {
            throw new InvalidDataException(
                $"--input {path}: no tensor 'x' (it has {string.Join(", ", file.Names.Take(10))})"
            );
        }
        if (x.Rank != 2 || x.Dim(1) != d || x.Dim(0) < 1 || x.DType is not (DType.Float32 or DType.BFloat16))
        {
            throw new InvalidDataException(
                $"--input {path}: tensor 'x' is {x}; expected float32 or bfloat16 [T, {d}] (hidden_size)"
            );
        }
        Tensor values = x.DType == DType.Float32 ? x : x.ToFloat32();
        EnsureFinite(path, values);
        return values;
    }

    /// <summary>
    /// A NaN or infinite token would reach the router and fail a rank with the router's message; the input file is
    /// the cause, so it is named instead.
    /// </summary>
    private static void EnsureFinite(string path, Tensor x)
    {
        ReadOnlySpan<float> values = x.AsSpan<float>();
        int i = NonFiniteValues.IndexOfFirst(values);
        if (i < 0)
            return;
        int d = x.Dim(1);
        throw new InvalidDataException(
            string.Create(
                CultureInfo.InvariantCulture,
                $"--input {path}: x[{i / d}, {i % d}] = {values[i]} is not finite"
            )
        );
    }

    /// <summary>
    /// The random batch and the run it feeds, before either is allocated: <c>--tokens × hidden_size</c> must be one
    /// tensor, and the in-process ranks must fit together in host memory and, on CUDA, in each GPU's free memory.
    /// </summary>
    private static void EnsureFits(HfMoeConfig config, LayerLayout layout, int tokens, ComputeOptions compute)
    {
        MemoryBudget.EnsureTensorFits(
            MemoryBudget.Multiply(tokens, config.HiddenSize),
            $"--tokens {tokens} × hidden_size {config.HiddenSize} of {config.Source}"
        );
        CheckpointLayerRunner.EnsureMemoryFits(config, layout, tokens, compute);
        if (compute.Device != DeviceKind.Cuda || DeviceMemory.Query() is not GpuMemory gpu)
            return;
        ValidationResult device = DeviceMemory.Decide(
            CheckpointLayerRunner.BytesPerRank(config, layout, tokens),
            layout.World,
            compute.Gpus > 0 ? compute.Gpus : gpu.Gpus,
            gpu.FreeBytes,
            $"--world {layout.World} --tokens {tokens}, the layer of {config.Source}"
        );
        if (!device.Successful)
            throw new SizeLimitException(device.Message!);
    }

    private static Tensor RandomTokens(int tokens, int d, int seed)
    {
        var random = new Random(seed);
        var x = Tensor.Uninitialized(DType.Float32, tokens, d);
        Span<float> values = x.AsSpan<float>();
        for (int i = 0; i < values.Length; i++)
        {
            // Box–Muller: standard normal tokens, like the scale of a normalised hidden state.
            double u1 = 1 - random.NextDouble(),
                u2 = random.NextDouble();
            values[i] = (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        return x;
    }
}
