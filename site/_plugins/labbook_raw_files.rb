# Written by labbook: publishes the files under these folders exactly as they are.
# Jekyll would render a file whose first line is '---' as a page and skip names starting with
# '_' or '.'; labbook's data files must reach readers byte for byte. Safe mode (GitHub Pages'
# classic build) loads no plugin: such files are then left out, never changed.
module LabbookRawFiles
  FOLDERS = ['assets'].freeze

  # A static file written under its own name: Jekyll's would unescape '%20' in it to a space.
  class RawFile < Jekyll::StaticFile
    def destination(dest)
      @site.in_dest_dir(dest, File.join(@dir, @name))
    end
  end

  class Generator < Jekyll::Generator
    safe true
    priority :highest

    def generate(site)
      FOLDERS.each { |folder| publish(site, folder) }
    end

    private

    def publish(site, folder)
      root = site.in_source_dir(folder)
      return unless File.directory?(root)

      inside = ->(path) { path.to_s.sub(%r!\A/!, "").start_with?("#{folder}/") }
      site.pages.reject! { |page| inside.call(page.relative_path) }
      site.posts.docs.reject! { |post| inside.call(post.relative_path) }
      site.static_files.reject! { |file| inside.call(file.relative_path) }
      Dir.glob("**/*", File::FNM_DOTMATCH, base: root).sort.each do |name|
        path = File.join(root, name)
        next if File.directory?(path) || File.symlink?(path)

        relative = File.join(folder, name)
        site.static_files << RawFile.new(site, site.source, File.dirname(relative), File.basename(relative))
      end
    end
  end
end
