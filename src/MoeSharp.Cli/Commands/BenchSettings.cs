using System.ComponentModel;
using Spectre.Console;
using Spectre.Console.Cli;

namespace MoeSharp.Cli.Commands;

/// <summary>Options of <c>moe bench</c>.</summary>
internal sealed class BenchSettings : CommandSettings
{
    [CommandOption("--world <N>")]
    [Description("In-process ranks (= EP size); 1 uses the local dispatcher; under --comm mpi the job's size counts. Default 1.")]
    public int World { get; init; } = 1;

    [CommandOption("--tokens <T>")]
    [Description("Tokens per rank. Default 16384.")]
    public int Tokens { get; init; } = 16384;

    [CommandOption("--dim <D>")]
    [Description("Model dimension. Default 2048.")]
    public int Dim { get; init; } = 2048;

    [CommandOption("--experts <E>")]
    [Description("Experts; a multiple of --world. Default 64.")]
    public int Experts { get; init; } = 64;

    [CommandOption("--top-k <K>")]
    [Description("Experts per token. Default 8.")]
    public int TopK { get; init; } = 8;

    [CommandOption("--score <WHEN>")]
    [Description("Multiply by the score before or after the experts. Default after.")]
    public string? Score { get; init; }

    [CommandOption("--warmup <N>")]
    [Description("Untimed runs first. Default 2.")]
    public int Warmup { get; init; } = 2;

    [CommandOption("--repeats <N>")]
    [Description("Timed runs; the median is reported. Default 7.")]
    public int Repeats { get; init; } = 7;

    [CommandOption("--seed <S>")]
    [Description("Random seed of the inputs. Default 0.")]
    public int Seed { get; init; }

    [CommandOption("--comm <KIND>")]
    [Description("inproc (threads of this process, default) or mpi (under mpiexec; the job's size is the world, and the exchange is also timed through raw MPI_Alltoallv).")]
    public string? Comm { get; init; }

    [CommandOption("--device <DEVICE>")]
    [Description("host (default), cuda (one rank per GPU, NCCL exchanges; in-process --gpus, not --world, sets the ranks) or ilgpu-cpu.")]
    public string? Device { get; init; }

    [CommandOption("--gpus <N>")]
    [Description("With --device cuda: GPUs (= ranks) to use. Default: every visible GPU.")]
    public int? Gpus { get; init; }

    [CommandOption("--preset <NAME>")]
    [Description("Shape preset: deepseek (4096 tokens/rank, D 7168, E 256, top-8) or qwen3 (8192 tokens/rank, D 2048, E 128, top-8); overrides --tokens/--dim/--experts/--top-k; rows bfloat16 unless --dtype.")]
    public string? Preset { get; init; }

    [CommandOption("--dtype <TYPE>")]
    [Description("Row dtype: float32 (f32) or bfloat16 (bf16). Default float32, or bfloat16 with --preset.")]
    public string? DType { get; init; }

    [CommandOption("--gemm")]
    [Description("With --device cuda: time the experts' grouped GEMM (cuBLAS, bfloat16 in, float32 out) next to a dense GEMM of the same FLOPs instead of dispatch.")]
    public bool Gemm { get; init; }

    [CommandOption("--profile")]
    [Description("With --device: also time each kernel (synchronizing after each, so the totals run slower).")]
    public bool Profile { get; init; }

    [CommandOption("--json")]
    [Description("Print JSON instead of a table: one object on the host; with --device one line per measurement (schema moesharp-bench/1).")]
    public bool Json { get; init; }

    public override ValidationResult Validate()
    {
        BenchShape shape;
        try
        {
            _ = RunSettings.ParseScoreBefore(Score);
            _ = CommKinds.Parse(Comm);
            _ = ComputeOptions.Parse(Device, Gpus);
            shape = BenchShape.Resolve(this);
        }
        catch (ArgumentException ex)
        {
            return ValidationResult.Error(ex.Message);
        }
        // Both would otherwise be ignored silently on the host.
        if (Gemm && Device != "cuda") return ValidationResult.Error("--gemm needs --device cuda (cuBLAS)");
        if (Profile && Device is null or "host") return ValidationResult.Error("--profile needs --device cuda or ilgpu-cpu");
        if (Warmup < 0) return ValidationResult.Error($"--warmup {Warmup} must not be negative");
        if (Repeats < 1) return ValidationResult.Error($"--repeats {Repeats} must be at least 1");
        ValidationResult basic = RunCaseOptions.Check(World, 1, shape.Tokens, shape.Dim, shape.Experts, shape.TopK, 1, null);
        if (!basic.Successful) return basic;
        if (Comm is null or "inproc" && Device is null or "host" && shape.Experts % World != 0) return ValidationResult.Error($"--experts {shape.Experts} must be a multiple of --world {World}");
        if (shape.TopK > shape.Experts) return ValidationResult.Error($"--top-k {shape.TopK} must not exceed --experts {shape.Experts}");
        return Faults.SettingsLimits.Bench(this, shape);
    }
}
