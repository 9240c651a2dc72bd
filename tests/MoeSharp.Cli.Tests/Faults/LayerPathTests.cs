using MoeSharp.Checkpoints;
using MoeSharp.Tensors;
using MoeSharp.Tests.Checkpoints;
using MoeSharp.Tests.Cli;

namespace MoeSharp.Tests.Faults;

/// <summary>
/// <c>moe layer --input / --output</c>: an output that cannot be written, or that is the input, is refused before
/// the run; an input with a NaN or an infinity is refused naming the file and the value's index.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class LayerPathTests
{
    private const int HiddenSize = 32; // the small Mixtral checkpoint's hidden_size

    [Theory]
    [InlineData("/nonexistent-moe-dir/y.safetensors", "does not exist")]
    [InlineData("", "needs a value, not an empty one")] // refused before parsing (OptionValues)
    public void An_unwritable_output_is_exit_2_naming_it(string output, string reason)
    {
        string line = CliInvoker.AssertUsageError(CliInvoker.Invoke(Layer("--output", output)));
        Assert.Contains("--output", line);
        Assert.Contains(reason, line);
    }

    [Fact]
    public void A_directory_as_output_is_exit_2_naming_it()
    {
        string folder = Directory.CreateTempSubdirectory("moe-layer-out-").FullName;
        try
        {
            string line = CliInvoker.AssertUsageError(CliInvoker.Invoke(Layer("--output", folder)));
            Assert.Equal($"moe: --output {folder}: is a directory, not a file", line);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void The_input_as_output_is_exit_2_and_the_input_is_kept()
    {
        string folder = Directory.CreateTempSubdirectory("moe-layer-same-").FullName;
        try
        {
            string input = Path.Combine(folder, "x.safetensors");
            WriteX(input, new float[2 * HiddenSize]);
            byte[] before = File.ReadAllBytes(input);
            // The same file spelled another way: compared as full paths.
            string output = Path.Combine(folder, ".", "x.safetensors");
            string line = CliInvoker.AssertUsageError(CliInvoker.Invoke(Layer("--input", input, "--output", output)));
            Assert.Contains("--output", line);
            Assert.Contains("--input", line);
            Assert.Equal(before, File.ReadAllBytes(input));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Theory]
    [InlineData(float.NaN, "NaN")]
    [InlineData(float.NegativeInfinity, "-Infinity")]
    public void A_non_finite_input_is_exit_2_naming_the_file_and_the_index(float bad, string shown)
    {
        string folder = Directory.CreateTempSubdirectory("moe-layer-nan-").FullName;
        try
        {
            string input = Path.Combine(folder, "x.safetensors");
            var values = new float[3 * HiddenSize];
            values[HiddenSize + 5] = bad;
            WriteX(input, values);
            string line = CliInvoker.AssertUsageError(CliInvoker.Invoke(Layer("--input", input)));
            Assert.Equal($"moe: --input {input}: x[1, 5] = {shown} is not finite", line);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static void WriteX(string path, float[] values) =>
        SafetensorsFile.Write(path, [new("x", Tensor.FromArray(values, values.Length / HiddenSize, HiddenSize))]);

    /// <summary><c>moe layer</c> on layer 0 of the small Mixtral checkpoint, with <paramref name="options"/>.</summary>
    private static string[] Layer(params string[] options) =>
        ["layer", "--checkpoint", CheckpointData.Folder("mixtral"), "--layer", "0", .. options];
}
