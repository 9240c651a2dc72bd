using System.ComponentModel;
using MoeSharp.Cli.Output;
using MoeSharp.Verification;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MoeSharp.Cli.Commands;

/// <summary>Options of <c>moe layer</c>.</summary>
internal sealed class LayerSettings : CommandSettings
{
    [CommandOption("--checkpoint <DIR>")]
    [Description(
        "Hugging Face checkpoint directory: config.json and one or more .safetensors (with or without model.safetensors.index.json). Qwen2-MoE, Qwen3-MoE, Mixtral, DeepSeek-V3."
    )]
    public string? Checkpoint { get; init; }

    [CommandOption("--layer <N>")]
    [Description("Decoder layer whose MoE block to run (a dense layer is an error).")]
    public int? Layer { get; init; }

    [CommandOption("--input <FILE>")]
    [Description(
        "safetensors file with tensor 'x' [[T, hidden_size]], float32 or bfloat16. Default: --tokens random tokens."
    )]
    public string? Input { get; init; }

    [CommandOption("--output <FILE>")]
    [Description("Write the block's output as tensor 'y' [[T, hidden_size]] float32 to this safetensors file.")]
    public string? Output { get; init; }

    [CommandOption("--tokens <T>")]
    [Description("Random standard-normal tokens when there is no --input. Default 16.")]
    public int? Tokens { get; init; }

    [CommandOption("--seed <N>")]
    [Description("Seed of the random tokens. Default 0.")]
    public int? Seed { get; init; }

    [CommandOption("--world <W>")]
    [Description("In-process ranks (the EP group); must divide the experts. Default 1.")]
    public int? World { get; init; }

    [CommandOption("--sp <S>")]
    [Description("Sequence-parallel group size; must divide --world. Default 1.")]
    public int? Sp { get; init; }

    [CommandOption("--sharded")]
    [Description("Sequence-sharded layout (each SP rank holds its shard of the tokens) instead of replicated.")]
    public bool Sharded { get; init; }

    [CommandOption("--device <DEVICE>")]
    [Description("host (default), cuda or ilgpu-cpu.")]
    public string? Device { get; init; }

    [CommandOption("--gpus <N>")]
    [Description("With --device cuda: GPUs to use. Default: every visible GPU.")]
    public int? Gpus { get; init; }

    [CommandOption("--timeout <SECONDS>")]
    [Description("Seconds a collective may wait for its peers, from 0.001 to 2147483. Default 60.")]
    public double? TimeoutSeconds { get; init; }

    public override ValidationResult Validate()
    {
        if (string.IsNullOrEmpty(Checkpoint))
            return ValidationResult.Error("layer needs --checkpoint DIR");
        if (Layer is null)
            return ValidationResult.Error("layer needs --layer N");
        if (Layer < 0)
            return ValidationResult.Error($"--layer {Layer} must be at least 0");
        if (Tokens is < 1)
            return ValidationResult.Error($"--tokens {Tokens} must be at least 1");
        if (Tokens is not null && Input is not null)
            return ValidationResult.Error("--tokens and --input exclude each other");
        if (World is < 1)
            return ValidationResult.Error($"--world {World} must be at least 1");
        if (Sp is < 1)
            return ValidationResult.Error($"--sp {Sp} must be at least 1");
        if ((World ?? 1) % (Sp ?? 1) != 0)
            return ValidationResult.Error($"--sp {Sp} must divide --world {World ?? 1}");
        if (Faults.OptionLimits.Timeout(TimeoutSeconds) is { Successful: false } timeout)
            return timeout;
        try
        {
            _ = ComputeOptions.Parse(Device, Gpus);
            // Before any work: the output is written only after the whole run.
            if (Output is not null)
                CheckOutput(Output, Input);
        }
        catch (ArgumentException ex)
        {
            return ValidationResult.Error(ex.Message);
        }
        return ValidationResult.Success();
    }

    /// <summary>
    /// <c>--output</c> can be created or replaced as a file, and is not the <c>--input</c> file it would replace.
    /// </summary>
    /// <exception cref="ArgumentException">It cannot be written, or it is the input file.</exception>
    private static void CheckOutput(string output, string? input)
    {
        OutputPaths.CheckFile("--output", output);
        if (input is null)
            return;
        StringComparison paths = OperatingSystem.IsLinux()
            ? StringComparison.Ordinal
            : StringComparison.OrdinalIgnoreCase;
        string inputPath;
        try
        {
            inputPath = Path.GetFullPath(input);
        }
        catch (Exception ex) when (ex is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new ArgumentException($"--input {input}: {ex.Message}", ex);
        }
        if (string.Equals(Path.GetFullPath(output), inputPath, paths))
            throw new ArgumentException($"--output {output} is the --input file; write y to another file");
    }
}
