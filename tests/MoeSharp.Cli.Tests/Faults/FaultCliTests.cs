using System.Diagnostics;
using MoeSharp.Cli;
using MoeSharp.Tests.Cli;
using Spectre.Console;

namespace MoeSharp.Tests.Faults;

/// <summary>Hostile options and signals: each answered with one line on stderr and the documented exit code.</summary>
[Collection(ConsoleCollection.Name)]
public class FaultCliTests
{
    private static (int Code, string Out, string Error) Invoke(params string[] args)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        TextWriter oldOut = Console.Out,
            oldError = Console.Error;
        IAnsiConsole oldAnsi = AnsiConsole.Console;
        AnsiConsole.Console = AnsiConsole.Create(
            new AnsiConsoleSettings
            {
                Out = new AnsiConsoleOutput(stdout),
                Ansi = AnsiSupport.No,
                ColorSystem = ColorSystemSupport.NoColors,
                Interactive = InteractionSupport.No,
            }
        );
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            int code = CliApp.Run(args);
            return (code, stdout.ToString(), stderr.ToString());
        }
        finally
        {
            AnsiConsole.Console = oldAnsi;
            Console.SetOut(oldOut);
            Console.SetError(oldError);
        }
    }

    [Theory]
    [InlineData("--timeout", "run", "--timeout", "1e12")]
    [InlineData("--timeout", "run", "--timeout", "NaN")]
    [InlineData("--timeout", "train", "--timeout", "Infinity")]
    [InlineData("--timeout", "verify-golden", "x.safetensors", "--timeout=-Infinity")]
    [InlineData("--tokens", "run", "--tokens", "1000000000000")]
    [InlineData("--tokens", "train", "--tokens", "2147483647")]
    [InlineData("--experts", "run", "--world", "1", "--sp", "1", "--experts", "2147483647")]
    [InlineData(
        "--align",
        "run",
        "--world",
        "2",
        "--sp",
        "1",
        "--tokens",
        "64",
        "--dim",
        "16",
        "--experts",
        "8",
        "--top-k",
        "2",
        "--align",
        "1073741824"
    )]
    [InlineData(
        "--align",
        "run",
        "--device",
        "ilgpu-cpu",
        "--world",
        "2",
        "--sp",
        "1",
        "--tokens",
        "64",
        "--dim",
        "16",
        "--experts",
        "8",
        "--top-k",
        "2",
        "--align",
        "2000000000"
    )]
    [InlineData(
        "--dim",
        "run",
        "--world",
        "1",
        "--sp",
        "1",
        "--tokens",
        "1000000",
        "--dim",
        "1024",
        "--experts",
        "8",
        "--top-k",
        "2"
    )]
    [InlineData("--world", "run", "--world", "4096", "--sp", "1")]
    [InlineData("--tokens", "bench", "--tokens", "1000000", "--dim", "100000")]
    public void HostileOption_Exits2_WithOneLineNamingIt(string option, params string[] args)
    {
        var (code, _, error) = Invoke(args);
        Assert.True(code == ExitCodes.UsageError, $"exit {code}: {error}");
        string line = Assert.Single(error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("moe: ", line);
        Assert.Contains(option, line);
        Assert.DoesNotContain("Nullable", line);
        Assert.DoesNotContain("TimeSpan", line);
        Assert.DoesNotContain("   at ", error);
    }

    [Fact]
    public void MemoryRefusal_SaysWhatIsNeeded_AndWhatIsAvailable()
    {
        var (code, _, error) = Invoke(
            "run",
            "--world",
            "1",
            "--sp",
            "1",
            "--tokens",
            "1000000",
            "--dim",
            "1024",
            "--experts",
            "8",
            "--top-k",
            "2"
        );
        Assert.Equal(ExitCodes.UsageError, code);
        Assert.Matches(
            @"^moe: needs [\d.]+ [GT]B of host memory per process, [\d.]+ [KMGT]B available \(.*--tokens 1000000 --dim 1024.*\)$",
            error.Trim()
        );
    }

    [Fact]
    public void TensorBetweenArrayMaxLengthAndIntMaxValue_IsRefusedAtValidation()
    {
        // 2147483600 rows of D 1: within int, beyond what one array holds (Array.MaxLength 2147483591).
        var (code, _, error) = Invoke(
            "bench",
            "--tokens",
            "2147483600",
            "--dim",
            "1",
            "--experts",
            "1",
            "--top-k",
            "1"
        );
        Assert.Equal(ExitCodes.UsageError, code);
        Assert.Matches(
            @"^moe: needs a tensor of 2147483600 elements, more than the 2147483591 one tensor can index \(.*\)$",
            error.Trim()
        );
    }

    [Fact]
    public void BenchJson_WithNoTokens_PrintsValidJson()
    {
        var (code, output, error) = Invoke(
            "bench",
            "--tokens",
            "0",
            "--dim",
            "8",
            "--experts",
            "4",
            "--top-k",
            "2",
            "--repeats",
            "1",
            "--warmup",
            "0",
            "--json"
        );
        Assert.True(code == 0, error);
        // Zero bytes in zero time: the rates are not finite, written as the schema's "NaN"/"Infinity" strings.
        string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.NotEmpty(lines);
        foreach (string line in lines)
        {
            using var json = System.Text.Json.JsonDocument.Parse(line);
            System.Text.Json.JsonElement rate = json.RootElement.GetProperty("gb_per_s");
            Assert.True(
                rate.ValueKind == System.Text.Json.JsonValueKind.Number
                    || rate.GetString() is "NaN" or "Infinity" or "-Infinity",
                line
            );
        }
    }

    [Fact]
    public void Help_ListsTheExitCodes()
    {
        var (code, output, _) = Invoke("--help");
        Assert.Equal(0, code);
        Assert.Contains("Exit codes: 0 success; 1 a verification ran and did not match; 2 bad options", output);
    }

    // Option descriptions go through Spectre's markup: an unescaped '[' (a range such as "[-1, 1)") makes the
    // command's help fail with exit code 3, which no other test reaches.
    [Theory]
    [InlineData("run")]
    [InlineData("verify-golden")]
    [InlineData("train")]
    [InlineData("soak")]
    [InlineData("bench")]
    [InlineData("layer")]
    [InlineData("bench-cpu")]
    public void EveryCommandsHelp_Renders(string command)
    {
        var (code, output, error) = Invoke(command, "--help");
        Assert.True(code == 0, $"moe {command} --help exited {code}: {error}");
        Assert.Contains("OPTIONS:", output);
    }

    [Fact]
    public void VerifyGolden_Directory_BrokenFile_AndMismatch_HaveTheirOwnExitCodes()
    {
        string dir = Directory.CreateTempSubdirectory("moesharp-faults-").FullName;
        try
        {
            var empty = Invoke("verify-golden", dir);
            Assert.Equal(ExitCodes.UsageError, empty.Code);
            Assert.Contains("is a directory with no .safetensors files", empty.Error);

            Dispatch.NaiveGolden.WriteRandom(Path.Combine(dir, "good.safetensors"), seed: 5);
            File.WriteAllBytes(Path.Combine(dir, "broken.safetensors"), [1, 2, 3]);
            var broken = Invoke("verify-golden", dir);
            Assert.True(broken.Code == ExitCodes.UsageError, broken.Error + broken.Out);
            Assert.Contains("PASS good.safetensors", broken.Out);
            Assert.Contains("moe: broken.safetensors: cannot read", broken.Error);
            Assert.DoesNotContain("broken", broken.Out.Split('\n').Last(l => l.Contains("passed")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("abc")]
    [InlineData("1,5")]
    [InlineData("1e39")]
    public void VerifyGolden_LayerFileWithAMalformedRouteScale_IsUnreadable_AndTheOthersStillGetVerdicts(string value)
    {
        // A bad route_scale used to abort the whole run with a bare FormatException message: no file, no key, no
        // verdict for the good file, no summary.
        string dir = Directory.CreateTempSubdirectory("moesharp-faults-").FullName;
        try
        {
            string golden = MoeSharp.Testing.GoldenFiles.PathOf("layer_softmax_k2.safetensors");
            MoeSharp.Tensors.SafetensorsContent layer = MoeSharp.Tensors.SafetensorsFile.Read(golden);
            var metadata = new Dictionary<string, string>(layer.Metadata) { ["route_scale"] = value };
            MoeSharp.Tensors.SafetensorsFile.Write(Path.Combine(dir, "bad-scale.safetensors"), layer, metadata);
            Dispatch.NaiveGolden.WriteRandom(Path.Combine(dir, "good.safetensors"), seed: 5);
            var result = Invoke("verify-golden", dir);
            Assert.True(result.Code == ExitCodes.UsageError, result.Error + result.Out);
            Assert.Contains("PASS good.safetensors", result.Out);
            Assert.Contains("1 passed, 0 failed, 0 skipped, 0 not applicable, 1 unreadable", result.Out);
            string line = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains($"bad-scale.safetensors: metadata route_scale = '{value}' is not a finite number", line);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void VerifyGolden_NonFiniteScoreOnRank2_OnIlgpuCpu_IsRank2sOwnMessage_OnOneLine()
    {
        string dir = Directory.CreateTempSubdirectory("moesharp-faults-").FullName;
        try
        {
            var (tensors, metadata) = Dispatch.NaiveGolden.Build(
                world: 4,
                sp: 2,
                tokens: 6,
                dim: 3,
                experts: 8,
                topK: 2,
                scoreBefore: false,
                seed: 2
            );
            // Token 0 of group 1: SP rank 0 of that group, world rank 2, whose dispatcher refuses it (a bad expert id
            // is refused with the file's metadata, before any rank starts).
            tensors["scores.g1"].AsSpan<float>()[0] = float.NaN;
            string path = Path.Combine(dir, "badscore.safetensors");
            MoeSharp.Tensors.SafetensorsFile.Write(path, tensors, metadata);
            var result = Invoke("verify-golden", "--device", "ilgpu-cpu", path);
            Assert.True(result.Code == ExitCodes.UsageError, result.Error + result.Out);
            string line = Assert.Single(result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries));
            Assert.Contains("rank 2 failed: ArgumentException: topScores[token 0, slot 0] = NaN is not finite", line);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("INT", 130, "SIGINT")]
    [InlineData("TERM", 143, "SIGTERM")]
    public async Task Signal_EndsTheCommandWithinTwoSeconds_WithOneLine(string signal, int expectedCode, string name)
    {
        if (!OperatingSystem.IsLinux())
            return;
        string moe = Path.Combine(AppContext.BaseDirectory, "moe.dll");
        // A shell's background jobs inherit SIGINT ignored; env restores the default so the test sees what a terminal
        // would.
        var start = new ProcessStartInfo("env") { RedirectStandardError = true, RedirectStandardOutput = true };
        foreach (
            string a in new[]
            {
                "--default-signal=INT",
                "dotnet",
                moe,
                "train",
                "--steps",
                "1000000",
                "--log-every",
                "1000000",
                "--world",
                "2",
            }
        )
            start.ArgumentList.Add(a);
        using Process process = Process.Start(start)!;
        await process.StandardOutput.ReadLineAsync(); // the header: the command is running
        using (Process kill = Process.Start("kill", $"-{signal} {process.Id}"))
            await kill.WaitForExitAsync();
        var clock = Stopwatch.StartNew();
        Task<string> error = process.StandardError.ReadToEndAsync();
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        bool ended = true;
        try
        {
            await process.WaitForExitAsync(limit.Token);
        }
        catch (OperationCanceledException)
        {
            ended = false;
            process.Kill();
        }
        Assert.True(ended && clock.Elapsed < TimeSpan.FromSeconds(2), $"still running after {clock.Elapsed}");
        Assert.Equal(expectedCode, process.ExitCode);
        Assert.Equal(
            $"moe: interrupted by {name}; stopping every rank (exit code {expectedCode})",
            (await error).Trim()
        );
    }
}
